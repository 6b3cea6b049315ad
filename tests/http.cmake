# The event-driven HTTP server (src/http) and the ops endpoint on it: /healthz latency under idle,
# slowloris and oversized-header load (bound: 100 ms), and the limits (431, 413, timeouts, caps).
dsinfer_add_test(http_test SOURCES http_test.cc
  LIBS dsinfer_http dsinfer_metrics
  LABELS http cpu)
# TLS and mTLS on the same server: HTTPS with the test CA (certificates made by the openssl CLI at
# test time), plain HTTP refused cleanly, client certificates and their identities, slow
# handshakes cut at the header timeout while /healthz over TLS stays under 100 ms.
dsinfer_add_test(http_tls_test SOURCES http_tls_test.cc
  LIBS dsinfer_http dsinfer_metrics PkgConfig::HTTPLIB absl::strings
  LABELS http cpu)

# The OpenAI-compatible API of a real `dsinfer serve` on loopback: the official `openai` client
# (skipped, exit 77, without it) and the raw SSE framing through `curl -N`.
if(TARGET dsinfer_server)
  dsinfer_add_test(openai_test SOURCES openai_test.cc
    LIBS dsinfer_server dsinfer_tiny_model PkgConfig::HTTPLIB absl::strings
    LABELS http server cpu)
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    add_test(NAME openai_api_python
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/openai_api_test.py
              --dsinfer $<TARGET_FILE:dsinfer>
              --make-tiny-model $<TARGET_FILE:dsinfer-make-tiny-model>
              --model-dir ${PROJECT_BINARY_DIR}/test-models/tiny-v3
              --work-dir ${CMAKE_CURRENT_BINARY_DIR}/openai_api_python)
    set_tests_properties(openai_api_python PROPERTIES
      LABELS "http;server;cpu" SKIP_RETURN_CODE 77 TIMEOUT 180)
  endif()
  add_test(NAME openai_sse_curl
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/openai_sse_curl_test.sh
            $<TARGET_FILE:dsinfer> $<TARGET_FILE:dsinfer-make-tiny-model>
            ${PROJECT_BINARY_DIR}/test-models/tiny-v3
            ${CMAKE_CURRENT_BINARY_DIR}/openai_sse_curl)
  set_tests_properties(openai_sse_curl PROPERTIES
    LABELS "http;server;cpu" SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
