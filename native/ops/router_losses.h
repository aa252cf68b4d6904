// The router's two auxiliary losses as single autograd nodes on the CPU (ATen formulas on CUDA): each
// runs every training step, and on a 64-input batch their ATen forms cost more in op and autograd-node
// overhead than in arithmetic.
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

// Router z-loss (ST-MoE, Zoph et al. 2022): mean over inputs of logsumexp(logits)^2; keeps the logits
// small. logits [T,E] float -> scalar (0 for T = 0). Kernel: kernels/router_z_loss.
at::Tensor router_z_loss(const at::Tensor& logits);

// Switch/GShard load-balancing loss from the gate's statistics: E * sum_e f_e * P_e, where
// f_e = counts_e / count_tokens (so sum_e f_e = k) and P_e = prob_sums_e / prob_tokens. Equals k at
// perfect balance. Differentiable through prob_sums only (the counts come from a top-k). counts [E]
// integer, prob_sums [E] float -> scalar (0 when either token count is 0). One process: both counts are
// the batch's T. Data parallel: f_e from the counts of the global batch (count_tokens inputs), P_e from
// this rank's prob_sums (prob_tokens inputs); with each rank's loss weighted by its share of the global
// batch, the ranks' gradients sum to those of the global batch's loss.
at::Tensor load_balancing_loss(const at::Tensor& counts, const at::Tensor& prob_sums, int64_t count_tokens,
                               int64_t prob_tokens);

}  // namespace moe::ops
