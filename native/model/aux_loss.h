// Switch/GShard load-balancing loss from the gate's statistics: N * sum_i f_i * P_i, where
// f_i = counts_i / T (so sum_i f_i = k) and P_i = prob_sums_i / T. Equals k at perfect balance.
// Differentiable through prob_sums only (the counts come from an argmax).
#pragma once
#include <ATen/ATen.h>

namespace moe::model {

// counts [E] int64, prob_sums [E] float, num_tokens T -> scalar.
at::Tensor load_balancing_loss(const at::Tensor& counts, const at::Tensor& prob_sums, int64_t num_tokens);

// Data parallel: f_i from the counts of the global batch (count_tokens inputs), P_i from this rank's
// prob_sums (prob_tokens inputs). With each rank's loss weighted by its share of the global batch, the
// ranks' gradients sum to those of the global batch's loss.
at::Tensor load_balancing_loss(const at::Tensor& counts, const at::Tensor& prob_sums, int64_t count_tokens,
                               int64_t prob_tokens);

}  // namespace moe::model

namespace moe::model {

// Router z-loss (ST-MoE, Zoph et al. 2022): mean over inputs of logsumexp(logits)^2; keeps the logits
// small. logits [T,E] -> scalar (0 for T = 0).
at::Tensor router_z_loss(const at::Tensor& logits);

}  // namespace moe::model
