dsinfer_add_test(cli_test SOURCES cli_test.cc
  LIBS dsinfer_weights nlohmann_json::nlohmann_json absl::strings LABELS cpu)
add_dependencies(cli_test dsinfer dsinfer-make-tiny-model)
target_compile_definitions(cli_test PRIVATE
  DSINFER_CLI="$<TARGET_FILE:dsinfer>"
  DSINFER_MAKE_TINY_MODEL="$<TARGET_FILE:dsinfer-make-tiny-model>")
if(TARGET dsinfer_server)
  target_compile_definitions(cli_test PRIVATE DSINFER_CLI_HAS_SERVE=1)
endif()
