# dsinfer-loadgen: the end-to-end load generator (bench/loadgen/), gRPC or the OpenAI API over
# HTTP/SSE (Boost.Beast client, header-only). Needs the generated API library (proto/); skipped
# in builds without it.
if(TARGET dsinfer_proto)
  find_package(gRPC CONFIG REQUIRED)
  find_package(Boost 1.74 REQUIRED)
  add_executable(dsinfer-loadgen
    loadgen/main.cc
    loadgen/workload.cc
    loadgen/grpc_transport.cc
    loadgen/openai_transport.cc
    loadgen/sse.cc
    loadgen/load_driver.cc
    loadgen/report.cc)
  target_link_libraries(dsinfer-loadgen PRIVATE dsinfer_proto dsinfer_core gRPC::grpc++
    Boost::headers Threads::Threads
    nlohmann_json::nlohmann_json absl::status absl::statusor absl::strings absl::str_format)
  target_compile_definitions(dsinfer-loadgen PRIVATE BOOST_ASIO_NO_DEPRECATED)
else()
  message(STATUS "dsinfer-loadgen: skipped (no dsinfer_proto target in this build)")
endif()
