# GPU tests (ctest label `gpu`): each kernel against its CPU twin, and the CUDA backend end to
# end. Built only with CUDA; every test skips ("no CUDA device: skipped") where no GPU is present.
if(DSINFER_HAVE_CUDA)
  find_package(CUDAToolkit REQUIRED)
  dsinfer_add_test(kernels_gpu_test SOURCES gpu/kernels_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_cpu_kernels dsinfer_core CUDA::cudart CUDA::cublas
    LABELS gpu)
  dsinfer_add_test(mla_attention_gpu_test SOURCES gpu/mla_attention_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_cpu_kernels dsinfer_core CUDA::cudart LABELS gpu)
  dsinfer_add_test(dsa_gpu_test SOURCES gpu/dsa_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_cpu_kernels dsinfer_core CUDA::cudart LABELS gpu)
  dsinfer_add_test(gqa_attention_gpu_test SOURCES gpu/gqa_attention_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_cpu_kernels dsinfer_core CUDA::cudart LABELS gpu)
  dsinfer_add_test(moe_gpu_test SOURCES gpu/moe_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_cpu_kernels dsinfer_core CUDA::cudart LABELS gpu)
  dsinfer_add_test(sampling_gpu_test SOURCES gpu/sampling_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_sampling dsinfer_core CUDA::cudart LABELS gpu)
  dsinfer_add_test(cuda_runner_test SOURCES gpu/cuda_runner_test.cc
    LIBS dsinfer_runner dsinfer_engine dsinfer_weights nlohmann_json::nlohmann_json absl::strings
         CUDA::cudart LABELS gpu)
  add_dependencies(cuda_runner_test dsinfer)
  target_compile_definitions(cuda_runner_test PRIVATE DSINFER_CLI="$<TARGET_FILE:dsinfer>")
  # MTP speculative decoding on the CUDA backend against the CPU backend and the golden.
  dsinfer_add_test(mtp_gpu_test SOURCES gpu/mtp_gpu_test.cc
    LIBS dsinfer_runner dsinfer_engine dsinfer_weights nlohmann_json::nlohmann_json absl::strings
         CUDA::cudart LABELS gpu)
  dsinfer_add_test(logprobs_gpu_test SOURCES gpu/logprobs_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_cpu_kernels dsinfer_core CUDA::cudart LABELS gpu)
  # The embedding API (libdsinfer) with its CUDA code: load, stream, cancel on the GPU.
  dsinfer_add_test(api_gpu_test SOURCES gpu/api_gpu_test.cc
    LIBS dsinfer_api dsinfer_tiny_model CUDA::cudart LABELS gpu)
  # NCCL communicator: a group of 1 GPU and of all GPUs, one thread per GPU.
  if(TARGET dsinfer_comm_nccl)
    dsinfer_add_test(nccl_communicator_test SOURCES gpu/nccl_communicator_test.cc
      LIBS dsinfer_comm_nccl CUDA::cudart LABELS gpu)
  endif()
endif()
