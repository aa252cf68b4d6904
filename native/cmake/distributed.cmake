# Distributed training runs on libtorch's own c10d (TCPStore + ProcessGroupGloo, compiled into
# libtorch_cpu). Its header includes Gloo's headers, which Debian ships apart (libgloo-dev); PyTorch's
# own packages carry them in their include folder. Without them the build links a stub that says so.
option(TORCH_MOE_DISABLE_DISTRIBUTED "Build without distributed training" OFF)
set(TORCH_MOE_DISTRIBUTED OFF)
if(NOT TORCH_MOE_DISABLE_DISTRIBUTED)
  find_path(TORCH_MOE_C10D_INCLUDE_DIR torch/csrc/distributed/c10d/ProcessGroupGloo.hpp HINTS ${TORCH_INCLUDE_DIRS})
  find_path(TORCH_MOE_GLOO_INCLUDE_DIR gloo/context.h HINTS ${TORCH_INCLUDE_DIRS})
  if(TORCH_MOE_C10D_INCLUDE_DIR AND TORCH_MOE_GLOO_INCLUDE_DIR)
    set(TORCH_MOE_DISTRIBUTED ON)
  endif()
endif()
if(TORCH_MOE_DISTRIBUTED)
  message(STATUS "torch-moe: distributed training ON (c10d Gloo, headers in ${TORCH_MOE_GLOO_INCLUDE_DIR})")
else()
  message(STATUS "torch-moe: distributed training OFF (no c10d/Gloo headers; Debian: apt-get install libgloo-dev)")
endif()
