// What the ops need from CUDA libtorch, behind a torch-only header: whether the CUDA kernels were built
// into this binary, and libtorch's current stream as the opaque handle the kernel launchers take.
// cuda_support.cpp is compiled against ATen's CUDA headers only when TORCH_MOE_WITH_CUDA is set.
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

// True when this build contains the CUDA kernels (libtorch had CUDA at build time).
bool cuda_kernels_built();

// Throws the one "built without CUDA" error (a ValueError naming the fix) when the kernels are not built.
void require_cuda_kernels();

// The current CUDA stream (cudaStream_t) of libtorch; throws when the kernels are not built.
void* current_cuda_stream();

// CPU tensors always pass; CUDA tensors pass when the kernels are built; anything else is refused.
void check_device_supported(const at::Tensor& t, const char* name);

}  // namespace moe::ops
