// The reference router on the CPU as one autograd node: the gate's linear map, the softmax top-k gate and
// both auxiliary losses (load balancing, z-loss). On a 64-input batch the four nodes it stands for
// (narrow_linear, router_z_loss, topk_gate, load_balancing_loss) cost more in op and autograd overhead
// than in arithmetic; this runs the same kernels on buffers of its own, in one node each way. The MoE
// layer takes it where fused_router_applies(); those four ops stay the reference (and the other devices'
// path), and a test compares the two.
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

struct RouterOutput {
  at::Tensor weights;    // [T,k] differentiable: the chosen experts' renormalised probabilities
  at::Tensor aux_loss;   // scalar differentiable: load_balancing_loss(counts, prob_sums, T, T)
  at::Tensor z_loss;     // scalar differentiable: router_z_loss(logits)
  at::Tensor idx;        // [T,k] int64, by decreasing probability (topk_gate's tie rule)
  at::Tensor counts;     // [E] int64 assignments per expert
  at::Tensor prob_sums;  // [E] sum over inputs of the softmax, not differentiable (aux_loss carries it)
};

// x [T,H] float32 with T >= 1, gate_w [E,H], gate_b [E], all on the CPU, and a CPU with the row kernels.
bool fused_router_applies(const at::Tensor& x, const at::Tensor& gate_w, const at::Tensor& gate_b);

// logits = x·gate_wᵀ + gate_b, then topk_gate(logits, k) and both losses of it. Needs fused_router_applies.
RouterOutput fused_router(const at::Tensor& x, const at::Tensor& gate_w, const at::Tensor& gate_b, int64_t k);

}  // namespace moe::ops
