dsinfer_add_test(server_config_test
  SOURCES server_config_test.cc
  LIBS dsinfer_server_config GTest::gmock
  LABELS config)

# Checks config files with the server's parser (tools/check_helm.sh uses it).
add_executable(server_config_check server_config_check.cc)
target_link_libraries(server_config_check PRIVATE dsinfer_server_config)
