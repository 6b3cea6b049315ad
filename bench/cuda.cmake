# CUDA kernel benchmarks (built only with CUDA): MLA decode bytes/s against the device-to-device
# copy bandwidth, MoE grouped GEMM TFLOP/s against cuBLAS dense GEMM of the same FLOPs, FP8 dense
# and grouped GEMMs against cuBLAS bf16 and cuBLASLt FP8.
if(DSINFER_HAVE_CUDA)
  find_package(CUDAToolkit REQUIRED)
  dsinfer_add_bench(cuda_kernels_bench
    SOURCES cuda_mla_bench.cc cuda_moe_bench.cc cuda_fp8_bench.cc cuda_bench_main.cc
    LIBS dsinfer_cuda_kernels CUDA::cudart CUDA::cublas CUDA::cublasLt)
endif()

# NCCL collectives at DeepSeek decode sizes (all-reduce, MoE all-to-all-v) over all the GPUs.
if(TARGET dsinfer_comm_nccl)
  dsinfer_add_bench(nccl_comm_bench SOURCES nccl_comm_bench.cc
    LIBS dsinfer_comm_nccl CUDA::cudart)
endif()
