# The embedding API (include/dsinfer, libdsinfer): unit tests against the shared library, and
# the install test: `cmake --install` into a temporary prefix, examples/embed configured and
# built as a separate project with find_package(dsinfer), run on the bundled tiny model.
dsinfer_add_test(api_test SOURCES api_test.cc
  LIBS dsinfer_api dsinfer_tiny_model
  LABELS api cpu)
# Parallel layouts start their other ranks from the dsinfer binary (worker_executable).
add_dependencies(api_test dsinfer)
target_compile_definitions(api_test PRIVATE DSINFER_CLI="$<TARGET_FILE:dsinfer>")

add_test(NAME api_install_example
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/api_install_test.sh
          ${CMAKE_COMMAND} ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR}
          $<TARGET_FILE:dsinfer-make-tiny-model> ${CMAKE_CURRENT_BINARY_DIR}/api_install_example
          ${CMAKE_GENERATOR})
set_tests_properties(api_install_example PROPERTIES LABELS "install;api;cpu" TIMEOUT 180)

# The request/response features beyond text: logprobs, tenants, arrival times,
# dequantize_fp8, chat answers read as reasoning, chat-only fields' validation.
dsinfer_add_test(api_features_test SOURCES api_features_test.cc
  LIBS dsinfer_api dsinfer_tiny_model
  LABELS api cpu)
