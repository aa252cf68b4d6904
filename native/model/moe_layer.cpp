#include "moe_layer.h"

#include "../ops/dispatch.h"
#include "../ops/expert_ffn.h"
#include "aux_loss.h"
#include "init.h"

namespace moe::model {

MoELayer::MoELayer(int64_t H, int64_t F, int64_t E, int64_t k, bool force_balanced_routing, at::Generator& gen)
    : num_experts_(E), top_k_(k), force_balanced_routing_(force_balanced_routing) {
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
  at::Tensor weights = gate.weights;
  if (force_balanced_routing_) {
    // Assignment a = t*k+j goes to expert a mod E: k consecutive (distinct) experts per token, equal load.
    const int64_t T = x.size(0);
    gate.idx = at::arange(T * top_k_, gate.idx.options()).remainder_(num_experts_).view({T, top_k_});
    weights = at::full({T, top_k_}, 1.0 / static_cast<double>(top_k_), gate.weights.options());
  }
  const ops::DispatchPlan plan = ops::make_dispatch_plan(gate.idx, num_experts_);
  const at::Tensor rows = ops::permute_tokens(x, plan);
  const at::Tensor expert_out = plan.padded() ? ops::expert_ffn_padded(rows, plan.capacity, w1, b1, w2, b2)
                                              : ops::expert_ffn(rows, plan.offsets, w1, b1, w2, b2);
  at::Tensor y = ops::combine_tokens(expert_out, weights, plan);
  at::Tensor aux = load_balancing_loss(gate.counts, gate.prob_sums, x.size(0));
  return MoELayerOutput{y, aux, gate};
}

}  // namespace moe::model
