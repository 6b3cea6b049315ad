dsinfer_add_test(engine_test SOURCES engine_test.cc
  LIBS dsinfer_engine dsinfer_runner nlohmann_json::nlohmann_json LABELS cpu)
