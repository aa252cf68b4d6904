// The router's two auxiliary losses as single autograd nodes on the CPU (ATen formulas on CUDA): each
// runs every training step, and on a 64-input batch their ATen forms cost more in op and autograd-node
// overhead than in arithmetic.
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

// Router z-loss (ST-MoE, Zoph et al. 2022): mean over inputs of logsumexp(logits)^2. logits [T,E] float
// -> scalar (0 for T = 0). Kernel: kernels/router_z_loss.
at::Tensor router_z_loss(const at::Tensor& logits);

// Switch/GShard balance loss: (E / prob_tokens) * sum_e (counts_e / count_tokens) * prob_sums_e.
// counts [E] integer (not differentiated), prob_sums [E] float -> scalar (0 when either token count is 0).
at::Tensor load_balancing_loss(const at::Tensor& counts, const at::Tensor& prob_sums, int64_t count_tokens,
                               int64_t prob_tokens);

}  // namespace moe::ops
