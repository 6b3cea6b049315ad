dsinfer_add_test(config_test
  SOURCES config_test.cc
  LIBS dsinfer_config nlohmann_json::nlohmann_json GTest::gmock
  LABELS config)
dsinfer_add_test(config_dense_test
  SOURCES config_dense_test.cc
  LIBS dsinfer_config nlohmann_json::nlohmann_json GTest::gmock
  LABELS config)
dsinfer_add_test(config_v4_test
  SOURCES config_v4_test.cc
  LIBS dsinfer_config nlohmann_json::nlohmann_json GTest::gmock
  LABELS config)
