#include "moe_layer.h"

#include "../ops/dispatch.h"
#include "../ops/expert_ffn.h"
#include "aux_loss.h"
#include "init.h"

namespace moe::model {

MoELayer::MoELayer(int64_t H, int64_t F, int64_t E, int64_t k, at::Generator& gen)
    : num_experts_(E), top_k_(k) {
  gate_w = register_parameter("gate_w", linear_uniform({E, H}, H, gen));
  gate_b = register_parameter("gate_b", linear_uniform({E}, H, gen));
  w1 = register_parameter("w1", linear_uniform({E, F, H}, H, gen));
  b1 = register_parameter("b1", linear_uniform({E, F}, H, gen));
  w2 = register_parameter("w2", linear_uniform({E, H, F}, F, gen));
  b2 = register_parameter("b2", linear_uniform({E, H}, F, gen));
}

int64_t MoELayer::params_per_expert() const { return (w1.numel() + b1.numel() + w2.numel() + b2.numel()) / num_experts_; }

MoELayerOutput MoELayer::forward(const at::Tensor& x) {
  const at::Tensor logits = at::addmm(gate_b, x, gate_w.t());  // router math in fp32
  ops::GateOutput gate = ops::topk_gate(logits, top_k_);
  const ops::DispatchPlan plan = ops::make_dispatch_plan(gate.idx, num_experts_);
  const at::Tensor rows = ops::permute_tokens(x, plan);
  const at::Tensor expert_out = ops::expert_ffn(rows, plan.offsets, w1, b1, w2, b2);
  at::Tensor y = ops::combine_tokens(expert_out, gate.weights, plan);
  at::Tensor aux = load_balancing_loss(gate.counts, gate.prob_sums, x.size(0));
  return MoELayerOutput{y, aux, gate};
}

}  // namespace moe::model
