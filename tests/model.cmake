dsinfer_add_test(model_golden_test SOURCES model_golden_test.cc
  LIBS dsinfer_engine dsinfer_runner dsinfer_weights nlohmann_json::nlohmann_json LABELS cpu)
dsinfer_add_test(kernels_cpu_test SOURCES kernels_cpu_test.cc LIBS dsinfer_cpu_kernels LABELS cpu)
dsinfer_add_test(kernels_gqa_test SOURCES kernels_gqa_test.cc LIBS dsinfer_cpu_kernels LABELS cpu)
dsinfer_add_test(kv_cache_test SOURCES kv_cache_test.cc LIBS dsinfer_kv_cache LABELS cpu)
dsinfer_add_test(sampler_test SOURCES sampler_test.cc LIBS dsinfer_sampling LABELS cpu)
dsinfer_add_test(model_program_test SOURCES model_program_test.cc
  LIBS dsinfer_engine dsinfer_runner LABELS cpu)
