dsinfer_add_test(weights_test
  SOURCES weights_test.cc
  LIBS dsinfer_weights dsinfer_tiny_model dsinfer_config nlohmann_json::nlohmann_json GTest::gmock
  LABELS weights)
