# scripts/gpu-check.sh without a GPU: its summaries on fixed benchmark output and a run that skips
# every GPU part (tests/gpu_check_script_test.sh). Plain bash + python3, no build target needed.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME gpu_check_script_test COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/gpu_check_script_test.sh)
  set_tests_properties(gpu_check_script_test PROPERTIES LABELS "cpu" TIMEOUT 120)
endif()
