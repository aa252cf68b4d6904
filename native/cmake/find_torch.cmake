# Finds libtorch in one documented order and stops with one message that says how to get it.
#   1. LIBTORCH: a libtorch folder (or any prefix holding share/cmake/Torch/TorchConfig.cmake)
#   2. a Python PyTorch install, when LIBTORCH_USE_PYTORCH=1: torch.utils.cmake_prefix_path of $ENV{PYTHON}
#      or python3
# The same order as the run-time loader (lib/loader/libtorch.ts).
#   3. the system (Debian/Ubuntu: apt-get install libtorch-dev)
# Sets TORCH_MOE_TORCH_SOURCE to the step that found it, for the build log.

set(_torch_moe_hints "")
if(DEFINED ENV{LIBTORCH} AND NOT "$ENV{LIBTORCH}" STREQUAL "")
  list(APPEND _torch_moe_hints "$ENV{LIBTORCH}" "$ENV{LIBTORCH}/share/cmake/Torch")
  find_package(Torch QUIET CONFIG PATHS ${_torch_moe_hints} NO_DEFAULT_PATH)
  if(NOT Torch_FOUND)
    message(FATAL_ERROR
      "torch-moe: LIBTORCH is set to '$ENV{LIBTORCH}' but no TorchConfig.cmake was found there.\n"
      "Point LIBTORCH at an unpacked libtorch folder (the one holding lib/ and share/cmake/Torch), "
      "or unset it to use a Python PyTorch install or the system libtorch.")
  endif()
  set(TORCH_MOE_TORCH_SOURCE "LIBTORCH=$ENV{LIBTORCH}")
endif()

if(NOT Torch_FOUND AND "$ENV{LIBTORCH_USE_PYTORCH}" STREQUAL "1")
  set(_py "$ENV{PYTHON}")
  if(_py STREQUAL "")
    find_program(_py NAMES python3 python)
  endif()
  if(_py)
    execute_process(
      COMMAND "${_py}" -c "import torch, torch.utils; print(torch.utils.cmake_prefix_path, end='')"
      OUTPUT_VARIABLE _py_torch_prefix RESULT_VARIABLE _py_rc ERROR_QUIET)
    if(_py_rc EQUAL 0 AND EXISTS "${_py_torch_prefix}/Torch/TorchConfig.cmake")
      find_package(Torch QUIET CONFIG PATHS "${_py_torch_prefix}" NO_DEFAULT_PATH)
      if(Torch_FOUND)
        set(TORCH_MOE_TORCH_SOURCE "Python PyTorch (${_py}: ${_py_torch_prefix})")
      endif()
    endif()
  endif()
endif()

if(NOT Torch_FOUND)
  find_package(Torch QUIET CONFIG)
  if(Torch_FOUND)
    set(TORCH_MOE_TORCH_SOURCE "system (${Torch_DIR})")
  endif()
endif()

if(NOT Torch_FOUND)
  message(FATAL_ERROR
    "torch-moe: libtorch was not found. Searched, in order:\n"
    "  1. the LIBTORCH environment variable (unset)\n"
    "  2. a Python PyTorch install, when LIBTORCH_USE_PYTORCH=1 (torch.utils.cmake_prefix_path): none usable\n"
    "  3. the system CMake prefixes (TorchConfig.cmake)\n"
    "Fix one of these ways:\n"
    "  - Debian/Ubuntu: sudo apt-get install libtorch-dev libopenblas0-openmp   (or: npm run setup)\n"
    "  - set LIBTORCH=/path/to/libtorch (an unpacked libtorch archive)\n"
    "  - pip install torch, then build with LIBTORCH_USE_PYTORCH=1 (and PYTHON=/path/to/that/python3)\n")
endif()
message(STATUS "torch-moe: libtorch ${Torch_VERSION} from ${TORCH_MOE_TORCH_SOURCE}")
