// The MoE layer: linear gate -> fused top-k gate -> permute -> all experts in one op -> combine.
// Returns the layer output with the load-balancing loss and the gate's outputs (for routing stats).
#pragma once
#include <torch/nn/module.h>

#include "../ops/topk_gate.h"

namespace moe::model {

struct MoELayerOutput {
  at::Tensor y;         // [T,H]
  at::Tensor aux_loss;  // scalar: N * sum f_i P_i
  ops::GateOutput gate;
};

class MoELayer : public torch::nn::Module {
 public:
  MoELayer(int64_t hidden_size, int64_t expert_hidden_size, int64_t num_experts, int64_t top_k,
           bool force_balanced_routing, at::Generator& gen);
  MoELayerOutput forward(const at::Tensor& x);  // x: [T,H]

  int64_t num_experts() const { return num_experts_; }
  int64_t top_k() const { return top_k_; }
  int64_t params_per_expert() const;

  at::Tensor gate_w, gate_b;  // [E,H], [E]
  at::Tensor w1, b1;          // [E,F,H], [E,F]
  at::Tensor w2, b2;          // [E,H,F], [E,H]

 private:
  int64_t num_experts_, top_k_;
  bool force_balanced_routing_;
};

}  // namespace moe::model
