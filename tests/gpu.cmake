# GPU tests (ctest label `gpu`): each kernel against its CPU twin, and the CUDA executor end to
# end. Built only with CUDA; every test skips ("no CUDA device: skipped") where no GPU is present.
if(DSINFER_HAVE_CUDA)
  find_package(CUDAToolkit REQUIRED)
  dsinfer_add_test(kernels_gpu_test SOURCES gpu/kernels_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_cpu_kernels dsinfer_core CUDA::cudart CUDA::cublas
    LABELS gpu)
  dsinfer_add_test(mla_attention_gpu_test SOURCES gpu/mla_attention_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_cpu_kernels dsinfer_core CUDA::cudart LABELS gpu)
  dsinfer_add_test(moe_gpu_test SOURCES gpu/moe_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_cpu_kernels dsinfer_core CUDA::cudart LABELS gpu)
  dsinfer_add_test(sampling_gpu_test SOURCES gpu/sampling_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_sampling dsinfer_core CUDA::cudart LABELS gpu)
  dsinfer_add_test(cuda_executor_test SOURCES gpu/cuda_executor_test.cc
    LIBS dsinfer_backend_cuda dsinfer_engine dsinfer_weights nlohmann_json::nlohmann_json
         CUDA::cudart LABELS gpu)
  # NCCL communicator: a group of 1 GPU and of all GPUs, one thread per GPU.
  if(TARGET dsinfer_comm_nccl)
    dsinfer_add_test(nccl_communicator_test SOURCES gpu/nccl_communicator_test.cc
      LIBS dsinfer_comm_nccl CUDA::cudart LABELS gpu)
  endif()
endif()
