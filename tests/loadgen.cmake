# dsinfer-loadgen (bench/loadgen) in both modes, gRPC and the OpenAI API over HTTP/SSE, against a
# real `dsinfer serve` on loopback with the bundled tiny model: successes, tokens, 401, 429 with
# the retry hint, the request timeout and the cancellation at drain. Needs the bench targets.
if(TARGET dsinfer_server AND TARGET dsinfer_proto AND DSINFER_BUILD_BENCH)
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    add_test(NAME loadgen_modes
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/loadgen_test.py
              --dsinfer $<TARGET_FILE:dsinfer>
              --loadgen $<TARGET_FILE:dsinfer-loadgen>
              --make-tiny-model $<TARGET_FILE:dsinfer-make-tiny-model>
              --model-dir ${PROJECT_BINARY_DIR}/test-models/tiny-v3
              --work-dir ${CMAKE_CURRENT_BINARY_DIR}/loadgen_modes)
    set_tests_properties(loadgen_modes PROPERTIES LABELS "server;http;cpu" TIMEOUT 120)
  endif()
endif()
