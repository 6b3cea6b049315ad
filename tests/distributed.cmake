# Scale-out: Gloo collectives, step messages, shard layouts and sliced loads (comm_test); the
# CLI's --tp/--ep runs against one rank, and a rank that dies (sharded_cli_test).
dsinfer_add_test(comm_test SOURCES comm_test.cc
  LIBS dsinfer_comm dsinfer_distributed dsinfer_weights gloo LABELS cpu)
dsinfer_add_test(sharded_cli_test SOURCES sharded_cli_test.cc
  LIBS dsinfer_runner nlohmann_json::nlohmann_json absl::strings LABELS cpu)
add_dependencies(sharded_cli_test dsinfer)
target_compile_definitions(sharded_cli_test PRIVATE DSINFER_CLI="$<TARGET_FILE:dsinfer>")
if(TARGET dsinfer_server)
  dsinfer_add_test(sharded_server_test SOURCES sharded_server_test.cc
    LIBS dsinfer_server dsinfer_engine dsinfer_runner PkgConfig::HTTPLIB absl::strings LABELS server cpu)
  add_dependencies(sharded_server_test dsinfer)
  target_compile_definitions(sharded_server_test PRIVATE DSINFER_CLI="$<TARGET_FILE:dsinfer>")
endif()
if(TARGET dsinfer_server)
  add_test(NAME multinode_loopback
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/multinode_loopback_test.sh $<TARGET_FILE:dsinfer>
            ${PROJECT_SOURCE_DIR}/tests/fixtures/models/v3_fp8
            ${CMAKE_CURRENT_BINARY_DIR}/multinode_loopback)
  set_tests_properties(multinode_loopback PROPERTIES LABELS "server;cpu" TIMEOUT 120)
endif()
if(TARGET dsinfer_server)
  # The same across two network namespaces joined by a veth pair (skipped where they cannot be
  # made, e.g. without root).
  add_test(NAME multinode_netns
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/multinode_loopback_test.sh $<TARGET_FILE:dsinfer>
            ${PROJECT_SOURCE_DIR}/tests/fixtures/models/v3_fp8
            ${CMAKE_CURRENT_BINARY_DIR}/multinode_netns netns)
  set_tests_properties(multinode_netns PROPERTIES LABELS "server;cpu" TIMEOUT 120
    SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endif()
