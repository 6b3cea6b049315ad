# dsinfer-loadgen: the end-to-end gRPC load generator (bench/loadgen/). Needs the generated API
# library (proto/); skipped in builds without it.
if(TARGET dsinfer_proto)
  find_package(gRPC CONFIG REQUIRED)
  add_executable(dsinfer-loadgen
    loadgen/main.cc
    loadgen/workload.cc
    loadgen/generate_call.cc
    loadgen/load_driver.cc
    loadgen/report.cc)
  target_link_libraries(dsinfer-loadgen PRIVATE dsinfer_proto dsinfer_core gRPC::grpc++
    nlohmann_json::nlohmann_json absl::status absl::statusor absl::strings absl::str_format)
else()
  message(STATUS "dsinfer-loadgen: skipped (no dsinfer_proto target in this build)")
endif()
