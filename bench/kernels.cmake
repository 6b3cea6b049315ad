dsinfer_add_bench(kernels_bench SOURCES kernels_bench.cc LIBS dsinfer_cpu_kernels dsinfer_core)
target_compile_options(kernels_bench PRIVATE -fopenmp-simd)  # the naive MLA prefill baseline, built like kernels/cpu
