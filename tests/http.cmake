# The event-driven HTTP server (src/http) and the ops endpoint on it: /healthz latency under idle,
# slowloris and oversized-header load (bound: 100 ms), and the limits (431, 413, timeouts, caps).
dsinfer_add_test(http_test SOURCES http_test.cc
  LIBS dsinfer_http dsinfer_metrics
  LABELS http cpu)
