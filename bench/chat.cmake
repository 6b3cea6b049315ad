# The chat output parser's cost per detokenized piece (it runs on every chat choice's text, on
# the engine's event path). Results: bench/RESULTS.md.
dsinfer_add_bench(chat_output_bench
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/chat_output_bench.cc
  LIBS dsinfer_chat dsinfer_tokenizer)
