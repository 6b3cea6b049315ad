dsinfer_add_test(model_golden_test SOURCES model_golden_test.cc
  LIBS dsinfer_engine dsinfer_runner dsinfer_weights nlohmann_json::nlohmann_json LABELS cpu)
dsinfer_add_test(kernels_cpu_test SOURCES kernels_cpu_test.cc LIBS dsinfer_cpu_kernels LABELS cpu)
dsinfer_add_test(blas_core_test SOURCES blas_core_test.cc LIBS dsinfer_cpu_kernels LABELS cpu)
dsinfer_add_test(kernels_gqa_test SOURCES kernels_gqa_test.cc LIBS dsinfer_cpu_kernels LABELS cpu)
dsinfer_add_test(kv_cache_test SOURCES kv_cache_test.cc LIBS dsinfer_kv_cache LABELS cpu)
dsinfer_add_test(sampler_test SOURCES sampler_test.cc LIBS dsinfer_sampling LABELS cpu)
dsinfer_add_test(speculative_sampling_test SOURCES speculative_sampling_test.cc
  LIBS dsinfer_sampling LABELS cpu)
dsinfer_add_test(step_input_test SOURCES step_input_test.cc LIBS dsinfer_runner LABELS cpu)
dsinfer_add_test(model_program_test SOURCES model_program_test.cc
  LIBS dsinfer_engine dsinfer_runner nlohmann_json::nlohmann_json LABELS cpu)
dsinfer_add_test(dsa_indexer_test SOURCES dsa_indexer_test.cc LIBS dsinfer_cpu_kernels LABELS cpu)
dsinfer_add_test(kernels_v4_test SOURCES kernels_v4_test.cc LIBS dsinfer_cpu_kernels LABELS cpu)
# The kernels and the golden models again on the AVX2 fallback kernels (kernels/cpu/isa.h).
gtest_discover_tests(kernels_cpu_test TEST_SUFFIX .avx2 DISCOVERY_TIMEOUT 60
  PROPERTIES LABELS cpu ENVIRONMENT DSINFER_CPU_ISA=avx2)
gtest_discover_tests(model_golden_test TEST_SUFFIX .avx2 DISCOVERY_TIMEOUT 60
  PROPERTIES LABELS cpu ENVIRONMENT DSINFER_CPU_ISA=avx2)
# ... and on AVX512-BF16 without AMX tiles, where the machine has AMX (the default is then AMX).
gtest_discover_tests(kernels_cpu_test TEST_SUFFIX .avx512 DISCOVERY_TIMEOUT 60
  PROPERTIES LABELS cpu ENVIRONMENT DSINFER_CPU_ISA=avx512)
gtest_discover_tests(model_golden_test TEST_SUFFIX .avx512 DISCOVERY_TIMEOUT 60
  PROPERTIES LABELS cpu ENVIRONMENT DSINFER_CPU_ISA=avx512)
dsinfer_add_test(mtp_test SOURCES mtp_test.cc
  LIBS dsinfer_engine dsinfer_runner dsinfer_weights nlohmann_json::nlohmann_json LABELS cpu)
# FP4 routed experts (expert_dtype fp4): kept FP4 == dequantised experts; expert_dtype checked.
dsinfer_add_test(model_fp4_test SOURCES model_fp4_test.cc
  LIBS dsinfer_engine dsinfer_runner dsinfer_weights nlohmann_json::nlohmann_json LABELS cpu)
