// Adam over flat buffers as one op: the whole model's parameters, gradients and moments each live in one
// contiguous float32 tensor, so a step is one kernel launch (CUDA) or one threaded SIMD pass (CPU)
// instead of a few ops per parameter.
#pragma once
#include <ATen/ATen.h>

#include "../kernels/adam.h"

namespace moe::ops {

// params, grads, exp_avg, exp_avg_sq: [n] float32 contiguous, one device. lr: [1] float32 and step: [1]
// int64 on that device; step is incremented here and the update uses the new count. Nothing reaches the
// host on CUDA, so the op can sit inside a captured CUDA graph.
void fused_adam_step(const at::Tensor& params, const at::Tensor& grads, const at::Tensor& exp_avg,
                     const at::Tensor& exp_avg_sq, const at::Tensor& lr, const at::Tensor& step,
                     const kernels::AdamHyper& hyper);

// CPU: the same step with the gradient given per parameter, in the flat buffers' order (their sizes must
// add up to n). Lets the trainer take autograd's fresh gradient tensors as they come, with no flat copy.
void fused_adam_step(const at::Tensor& params, at::TensorList grads, const at::Tensor& exp_avg,
                     const at::Tensor& exp_avg_sq, const at::Tensor& lr, const at::Tensor& step,
                     const kernels::AdamHyper& hyper);

}  // namespace moe::ops
