# FP8 GEMM kernels against their CPU twins (label gpu; the tests skip without a GPU, the
# host-side checks of argument validation and the gate/up interleaving run anywhere).
if(DSINFER_HAVE_CUDA)
  find_package(CUDAToolkit REQUIRED)
  dsinfer_add_test(fp8_gemm_gpu_test SOURCES gpu/fp8_gemm_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_cpu_kernels dsinfer_core CUDA::cudart LABELS gpu)
endif()

# FP4-weight grouped GEMM (DeepSeek-V4 experts) against cpu::LinearFp4 (label gpu).
if(DSINFER_HAVE_CUDA)
  dsinfer_add_test(fp4_grouped_gemm_gpu_test SOURCES gpu/fp4_grouped_gemm_gpu_test.cc
    LIBS dsinfer_cuda_kernels dsinfer_cpu_kernels dsinfer_core CUDA::cudart LABELS gpu)
endif()
