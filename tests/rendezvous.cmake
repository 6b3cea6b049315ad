# Multi-node rendezvous: RendezvousServer + GrpcStore on 127.0.0.1 (ephemeral ports), and a real
# Gloo full-mesh rendezvous through the store.
if(TARGET dsinfer_rendezvous)
  find_package(Gloo CONFIG REQUIRED)
  dsinfer_add_test(rendezvous_test SOURCES rendezvous_test.cc
    LIBS dsinfer_rendezvous gloo absl::strings LABELS cpu)
endif()
