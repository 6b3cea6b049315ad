# FP8 CPU kernels: E4M3 format, LinearFp8 against cpu::Linear, act_quant / fp8_gemm reference.
dsinfer_add_test(kernels_fp8_test SOURCES kernels_fp8_test.cc
  LIBS dsinfer_cpu_kernels dsinfer_core LABELS cpu)
