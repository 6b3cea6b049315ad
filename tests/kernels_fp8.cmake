# FP8 CPU kernels: E4M3 format, LinearFp8 against cpu::Linear, act_quant / fp8_gemm reference.
dsinfer_add_test(kernels_fp8_test SOURCES kernels_fp8_test.cc
  LIBS dsinfer_cpu_kernels dsinfer_core LABELS cpu)
# The same suite on the AVX2 fallback kernels (kernels/cpu/isa.h), whatever the machine has.
gtest_discover_tests(kernels_fp8_test TEST_SUFFIX .avx2 DISCOVERY_TIMEOUT 60
  PROPERTIES LABELS cpu ENVIRONMENT DSINFER_CPU_ISA=avx2)
gtest_discover_tests(kernels_fp8_test TEST_SUFFIX .avx512 DISCOVERY_TIMEOUT 60
  PROPERTIES LABELS cpu ENVIRONMENT DSINFER_CPU_ISA=avx512)

# FP4 CPU kernels: LinearFp4 against its reference and cpu::Linear on the dequantised matrix.
dsinfer_add_test(kernels_fp4_test SOURCES kernels_fp4_test.cc
  LIBS dsinfer_cpu_kernels dsinfer_core LABELS cpu)
gtest_discover_tests(kernels_fp4_test TEST_SUFFIX .avx2 DISCOVERY_TIMEOUT 60
  PROPERTIES LABELS cpu ENVIRONMENT DSINFER_CPU_ISA=avx2)
gtest_discover_tests(kernels_fp4_test TEST_SUFFIX .avx512 DISCOVERY_TIMEOUT 60
  PROPERTIES LABELS cpu ENVIRONMENT DSINFER_CPU_ISA=avx512)
