# NCCL communicator (GPU collectives): dsinfer_comm_nccl, included from src/comm/CMakeLists.txt.
# Built only with the CUDA backend and when NCCL is found (nccl.h and libnccl, looked up in
# NCCL_ROOT / $NCCL_ROOT / $NCCL_HOME, the CUDA toolkit, then the system paths). Host code only.
if(DSINFER_HAVE_CUDA)
  find_package(CUDAToolkit REQUIRED)
  find_path(NCCL_INCLUDE_DIR nccl.h
    HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME} ${CUDAToolkit_INCLUDE_DIRS}
          ${CUDAToolkit_LIBRARY_ROOT}
    PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl
    HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME} ${CUDAToolkit_LIBRARY_DIR}
          ${CUDAToolkit_LIBRARY_ROOT}
    PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    message(STATUS "dsinfer: NCCL ${NCCL_LIBRARY} (headers in ${NCCL_INCLUDE_DIR})")
    add_library(dsinfer_comm_nccl ${CMAKE_CURRENT_LIST_DIR}/nccl_communicator.cc)
    target_include_directories(dsinfer_comm_nccl PUBLIC ${PROJECT_SOURCE_DIR})
    target_include_directories(dsinfer_comm_nccl SYSTEM PUBLIC ${NCCL_INCLUDE_DIR})
    target_link_libraries(dsinfer_comm_nccl
      PUBLIC ${NCCL_LIBRARY} CUDA::cudart absl::status absl::statusor absl::span
      PRIVATE absl::strings)
    # Code that may use NCCL guards it with this definition.
    target_compile_definitions(dsinfer_comm_nccl PUBLIC DSINFER_HAVE_NCCL=1)
  else()
    message(STATUS "dsinfer: NCCL not found (nccl.h: ${NCCL_INCLUDE_DIR}, "
                   "libnccl: ${NCCL_LIBRARY}); dsinfer_comm_nccl not built")
  endif()
endif()
