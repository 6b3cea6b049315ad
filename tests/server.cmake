# gRPC server: integration tests against a real server on 127.0.0.1 (ephemeral ports), and the
# Python client example against `dsinfer serve` (skipped when grpcio is missing).
if(TARGET dsinfer_server)
  dsinfer_add_test(server_test SOURCES server_test.cc
    LIBS dsinfer_server dsinfer_tiny_model PkgConfig::HTTPLIB absl::strings
    LABELS server cpu)
  # Issue 13: admission off the engine thread, retry hints, TTFT from arrival, gauges, deadlines,
  # a failed backend; and the faults found as a hostile client or careless operator.
  dsinfer_add_test(server_load_test SOURCES server_load_test.cc
    LIBS dsinfer_server dsinfer_tiny_model PkgConfig::HTTPLIB absl::strings
    LABELS server cpu)
  dsinfer_add_test(server_faults_test SOURCES server_faults_test.cc
    LIBS dsinfer_server dsinfer_tiny_model PkgConfig::HTTPLIB absl::strings
    LABELS server cpu)
  # Issue 15: a dense R1 distill (qwen2 fixture, the distills' tokenizer layout) served.
  dsinfer_add_test(server_dense_test SOURCES server_dense_test.cc
    LIBS dsinfer_server dsinfer_tiny_model PkgConfig::HTTPLIB absl::strings
    LABELS server cpu)
  # Issue 12: DeepSeek's chat features on both APIs (reasoning, tool calls, tool results) with
  # a scripted runner; the official `openai` client against it (skipped without the package).
  dsinfer_add_test(chat_serving_test SOURCES chat_serving_test.cc
    LIBS dsinfer_server dsinfer_tiny_model PkgConfig::HTTPLIB absl::strings
    LABELS server http cpu)

  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    add_test(NAME python_client_example
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/python_client_test.py
              --dsinfer $<TARGET_FILE:dsinfer>
              --make-tiny-model $<TARGET_FILE:dsinfer-make-tiny-model>
              --source-dir ${PROJECT_SOURCE_DIR}
              --model-dir ${PROJECT_BINARY_DIR}/test-models/tiny-v3
              --work-dir ${CMAKE_CURRENT_BINARY_DIR}/python_client_example)
    set_tests_properties(python_client_example PROPERTIES
      LABELS "server;cpu" SKIP_RETURN_CODE 77 TIMEOUT 120)
  endif()
endif()
