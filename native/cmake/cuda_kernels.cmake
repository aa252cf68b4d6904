# The CUDA kernels (native/kernels/*.cu) are built when the libtorch found has CUDA (TORCH_CUDA_LIBRARIES is
# set by TorchConfig.cmake then). They include CUDA headers only, never torch's, so they form their own
# target, linked into moe_kernels. With a CPU libtorch (Debian's) this file only reports the skip; the
# separate `npm run check:cuda` still compiles every .cu file with nvcc so that CI catches breakage.
option(TORCH_MOE_DISABLE_CUDA "Build the CPU path only, even against a CUDA libtorch" OFF)
set(TORCH_MOE_CUDA OFF)
if(TORCH_CUDA_LIBRARIES AND NOT TORCH_MOE_DISABLE_CUDA)
  set(TORCH_MOE_CUDA ON)
endif()

if(TORCH_MOE_CUDA)
  # PyTorch's CMake config sets the -gencode flags from TORCH_CUDA_ARCH_LIST (Hopper, sm_90a, on the
  # reference GPU host); without it, fall back to sm_90.
  if(NOT CMAKE_CUDA_ARCHITECTURES AND NOT CMAKE_CUDA_FLAGS MATCHES "gencode")
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  file(GLOB TORCH_MOE_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/native/kernels/*.cu)
  add_library(moe_kernels_cuda STATIC ${TORCH_MOE_CUDA_SOURCES})
  # The shared runtime: the same libcudart that libtorch uses, so stream handles mean the same thing.
  set_target_properties(moe_kernels_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Shared POSITION_INDEPENDENT_CODE ON)
  message(STATUS "torch-moe: CUDA kernels ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, flags '${CMAKE_CUDA_FLAGS}')")
else()
  message(STATUS "torch-moe: CUDA kernels OFF (this libtorch has no CUDA); CPU path only")
endif()
