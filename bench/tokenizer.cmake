# Tokenizer throughput (single thread) on the fixture corpus; compare with
# tools/bench_hf_tokenizer.py (HF tokenizers). Results: bench/RESULTS.md.
dsinfer_add_bench(tokenizer_bench
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_bench.cc
  LIBS dsinfer_tokenizer nlohmann_json::nlohmann_json)
