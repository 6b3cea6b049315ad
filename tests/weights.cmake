dsinfer_add_test(weights_test
  SOURCES weights_test.cc
  LIBS dsinfer_weights dsinfer_tiny_model dsinfer_config nlohmann_json::nlohmann_json GTest::gmock
  LABELS weights)

dsinfer_add_test(huge_pages_test
  SOURCES huge_pages_test.cc
  LIBS dsinfer_core
  LABELS weights)

dsinfer_add_test(weights_fp4_test
  SOURCES weights_fp4_test.cc
  LIBS dsinfer_weights nlohmann_json::nlohmann_json GTest::gmock
  LABELS weights)
