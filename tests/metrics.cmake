dsinfer_add_test(metrics_test
  SOURCES metrics_test.cc
  LIBS dsinfer_metrics PkgConfig::HTTPLIB GTest::gmock
  LABELS metrics)

# Scrape a metrics program over loopback HTTP and validate the text with promtool and with
# Python prometheus_client's parser (skipped, exit 77, when python3/prometheus_client is missing).
add_executable(metrics_exposition_dump metrics_exposition_dump.cc)
target_link_libraries(metrics_exposition_dump PRIVATE dsinfer_metrics PkgConfig::HTTPLIB)
foreach(mode promtool python)
  add_test(NAME metrics_exposition_${mode}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/check_metrics_exposition.sh
            $<TARGET_FILE:metrics_exposition_dump> ${mode})
  set_tests_properties(metrics_exposition_${mode} PROPERTIES
    LABELS "metrics;cpu" SKIP_RETURN_CODE 77 TIMEOUT 60)
endforeach()
