# Chat features: template recognition on the three DeepSeek templates (tests/fixtures/chat),
# rendering against DeepSeek's documented prompts, the streaming output parser.
dsinfer_add_test(chat_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/chat_test.cc
  LIBS dsinfer_chat dsinfer_tokenizer nlohmann_json::nlohmann_json absl::strings GTest::gmock
  LABELS chat)
dsinfer_add_test(chat_output_parser_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/chat_output_parser_test.cc
  LIBS dsinfer_chat GTest::gmock
  LABELS chat)
