# Tokenizer: HF parity on committed fixtures (tools/gen_tokenizer_fixtures.py), robustness,
# the Oniguruma -> PCRE2 regex translation checked on every code point, and Kimi-K2's
# tiktoken-format tokenizer (tools/gen_kimi_tokenizer_fixture.py), the R1 distills' Qwen2 / Llama-3
# tokenizer.json layouts (tools/gen_distill_tokenizer_fixtures.py).
foreach(t tokenizer_test tokenizer_robustness_test tokenizer_unicode_test tokenizer_kimi_test
    tokenizer_distill_test)
  dsinfer_add_test(${t}
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${t}.cc
    LIBS dsinfer_tokenizer nlohmann_json::nlohmann_json absl::strings GTest::gmock
    LABELS tokenizer)
endforeach()
# Kimi-K2's chat format is a format of the chat library (src/chat).
target_link_libraries(tokenizer_kimi_test PRIVATE dsinfer_chat)
target_link_libraries(tokenizer_distill_test PRIVATE dsinfer_chat)
