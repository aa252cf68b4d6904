// Shared helpers of the .cu files: launch-error checks that turn into C++ exceptions (the binding turns
// those into JS errors), grid sizing, and the opaque stream handle the torch side passes in.
// CUDA headers only: the kernels must compile with nvcc where no CUDA libtorch exists.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace moe::kernels::cuda {

inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(status));
  }
}

// After a launch: a bad configuration is reported now; faults inside the kernel surface at the next sync.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Threads for a block that walks one row of H values: enough to cover H, at least a warp, at most 256.
inline int threads_for_row(int64_t H) { return H >= 256 ? 256 : (H >= 128 ? 128 : (H >= 64 ? 64 : 32)); }

inline unsigned int blocks_for(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned int>(b < 1 ? 1 : b);
}

}  // namespace moe::kernels::cuda
