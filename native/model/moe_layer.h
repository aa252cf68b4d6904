// The MoE layer: gate -> routing -> all experts in one op -> combine, plus optional shared experts.
// The reference routing (softmax top-k, dropless) runs the fused gate and the dispatch kernels; the other
// routers of model/routing.h run over assignment lists on the CPU. Returns the layer output with the
// balancing losses and a record of the routing (for metrics, bias balancing and routing statistics).
#pragma once
#include <torch/nn/module.h>

#include <memory>

#include "../dist/group.h"
#include "config.h"
#include "routing.h"

namespace moe::model {

struct MoELayerOutput {
  at::Tensor y;         // [T,H]; [T,O] through composed second layers (inference_layers)
  at::Tensor aux_loss;  // scalar: N * sum f_i P_i (0 where the routing fixes the load)
  at::Tensor z_loss;    // scalar: mean over inputs of logsumexp(logits)^2 (0 without a gate)
  RoutingRecord routing;
};

class MoELayer : public torch::nn::Module {
 public:
  // Sizes from config.hidden_size, expert_hidden_size, num_experts, top_k; routing from its routing fields.
  MoELayer(const ModelConfig& config, at::Generator& gen);
  // x: [T,H] the layer input; raw: [T,in] the model input (hash routing hashes it; may be undefined otherwise).
  MoELayerOutput forward(const at::Tensor& x, const at::Tensor& raw = {});

  // The weights the experts compute with: the layer's own, or inference_layers(proj)'s. Second layers map
  // the hidden activations to the layer's output: the own ones (width H) or composed with a projection
  // (width O). first_t: the first layers transposed for the inference product (undefined: w1 is used).
  struct ExpertLayers {
    at::Tensor first_t;               // [E,H,F] or undefined
    at::Tensor w2, b2;                // [E,O,F], [E,O]
    at::Tensor shared_w2, shared_b2;  // [O,S*F], [O] (the shared experts' biases summed); undefined if S = 0
  };
  // For inference over many inputs, prepared once: the second layers composed with proj [O,H], so that
  // forward_with(x, raw, inference_layers(proj)).y is forward(x, raw).y·projᵀ, since
  // proj·Σ_k w_k(W2_k a_k + b2_k) = Σ_k w_k((proj·W2_k) a_k + proj·b2_k), and the first layers transposed
  // (ops::expert_ffn_inference). Where the layer feeds a linear map of fewer outputs (O < H), the experts'
  // second products shrink from H to O columns. The same sums up to float rounding; routing is
  // unchanged. Without autograd; not under expert parallelism (each rank holds only some experts).
  ExpertLayers inference_layers(const at::Tensor& proj) const;
  MoELayerOutput forward_with(const at::Tensor& x, const at::Tensor& raw, const ExpertLayers& layers);
  bool expert_parallel() const { return expert_parallel_; }
  // Bias balancing: after an optimiser step, nudge each expert's selection bias by
  // rate * sign(mean demand - its demand). A no-op unless config.bias_balancing_rate > 0.
  void balance(const at::Tensor& demand);

  int64_t num_experts() const { return config_.num_experts; }
  int64_t top_k() const { return config_.top_k; }
  int64_t params_per_expert() const;
  // Routed experts one input uses, on average: k, or capacityFactor * k (at most E) for expert choice.
  double experts_per_input() const;
  bool has_gate() const { return config_.routing != Routing::kHash; }

  at::Tensor gate_w, gate_b;          // [E,H], [E]; undefined for hash routing
  at::Tensor selection_bias;          // [E] buffer; defined with bias balancing
  at::Tensor w1, b1;                  // [E,F,H], [E,F]
  at::Tensor w2, b2;                  // [E,H,F], [E,H]
  at::Tensor shared_w1, shared_b1;    // [S*F,H], [S*F]: the S shared experts' first layers, stacked
  at::Tensor shared_w2, shared_b2;    // [H,S*F], [S,H]

  // Router logits [T,E] in fp32, with the training-only exploration of the config: jitter of the gate's
  // input and Gaussian noise on the logits (both off in eval mode). Needs a gate.
  at::Tensor gate_logits(const at::Tensor& x);

  // Data-parallel training sets the ranks' group (nullptr: one process): the balancing loss and the
  // selection-bias updates then see the expert counts of the global batch, summed over the ranks. With
  // expert_parallel, w1..b2 hold this rank's experts only (model/expert_parallel.h) and routed rows
  // travel to their experts' ranks.
  void set_group(std::shared_ptr<dist::Group> group, bool expert_parallel);
  // Throws unless w1..b2 hold all experts: they hold only this rank's during an expert-parallel train
  // call, and still do after one that failed before it could gather them back.
  void require_all_experts() const;

 private:
  // The load-balancing loss of this rank's inputs and the expert demand it saw: with a group, the global
  // batch's counts (one small all-reduce), else the local ones.
  struct Balance {
    at::Tensor loss, demand;
  };
  Balance balancing_loss(const at::Tensor& demand, const at::Tensor& prob_sums, int64_t T);
  ExpertLayers own_layers() const;
  // The reference routing (softmax top-k, dropless): the gate in one fused node where
  // fused_router_applies, else from the logits in separate ops; then top_k_dispatch.
  MoELayerOutput reference_routing(const at::Tensor& x, const ExpertLayers& layers);
  // Tokens to their experts (idx [T,k]) and back, weighted; the routing record without prob_sums/demand
  // (and, in a training step, without the per-assignment lists: see RoutingRecord).
  MoELayerOutput top_k_dispatch(const at::Tensor& x, const at::Tensor& idx, const at::Tensor& weights,
                                const at::Tensor& load, const ExpertLayers& layers);
  // The experts over expert-contiguous rows: here, or across the ranks under expert parallelism.
  at::Tensor run_experts(const at::Tensor& rows, const at::Tensor& offsets, const ExpertLayers& layers);
  int64_t capacity(int64_t T) const;
  at::Tensor measured_z_loss(const at::Tensor& logits) const;

  ModelConfig config_;
  at::Generator noise_gen_;  // gate noise and jitter: seeded from the model's seed
  std::shared_ptr<dist::Group> group_;
  bool expert_parallel_ = false;
};

}  // namespace moe::model
