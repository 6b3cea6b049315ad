# Multi-node rendezvous over gRPC (RendezvousServer on the leader, GrpcStore for gloo on every
# rank): dsinfer_rendezvous, included from src/comm/CMakeLists.txt. The service is
# proto/dsinfer/internal/v1/rendezvous.proto, compiled into dsinfer_proto.
find_package(gRPC CONFIG REQUIRED)
find_package(Gloo CONFIG REQUIRED)  # Debian's libgloo-dev: imported target `gloo`
add_library(dsinfer_rendezvous ${CMAKE_CURRENT_LIST_DIR}/rendezvous_store.cc)
target_include_directories(dsinfer_rendezvous PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(dsinfer_rendezvous
  PUBLIC gloo absl::status absl::statusor absl::span
  PRIVATE dsinfer_proto gRPC::grpc++ absl::flat_hash_map absl::strings)
