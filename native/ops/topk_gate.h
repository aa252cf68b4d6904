// The fused top-k gate as a differentiable op: logits -> softmax -> top-k -> renormalised weights, plus
// per-expert assignment counts and probability sums for the load-balancing loss. Own backward.
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

struct GateOutput {
  at::Tensor weights;    // [T,k] float, rows sum to 1; differentiable
  at::Tensor prob_sums;  // [E] float, sum over tokens of the softmax; differentiable
  at::Tensor idx;        // [T,k] int64, selected experts by decreasing probability
  at::Tensor counts;     // [E] int64, assignments per expert (sums to T*k)
  at::Tensor probs;      // [T,E] float softmax, not differentiable (stats only)
};

// logits: [T,E] float32/float64, CPU or CUDA. k in [1,E]. Ties: lower expert index wins.
GateOutput topk_gate(const at::Tensor& logits, int64_t k);

}  // namespace moe::ops
