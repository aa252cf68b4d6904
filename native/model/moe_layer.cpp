#include "moe_layer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/autograd.h>

#include "../kernels/row_hash.h"
#include "../ops/dispatch.h"
#include "../ops/expert_ffn.h"
#include "../ops/fused_router.h"
#include "../ops/narrow_linear.h"
#include "../ops/routed_experts.h"
#include "../ops/router_losses.h"
#include "../ops/topk_gate.h"
#include "expert_parallel.h"
#include "init.h"

namespace moe::model {

MoELayer::MoELayer(const ModelConfig& c, at::Generator& gen)
    : config_(c), noise_gen_(at::make_generator<at::CPUGeneratorImpl>(c.seed ^ 0x6e6f697365ULL)) {
  const int64_t H = c.hidden_size, F = c.expert_hidden_size, E = c.num_experts, S = c.shared_experts;
  // Drawn in this order so that the reference model's initialisation never changes.
  if (has_gate()) {
    gate_w = register_parameter("gate_w", linear_uniform({E, H}, H, gen));
    gate_b = register_parameter("gate_b", linear_uniform({E}, H, gen));
  }
  w1 = register_parameter("w1", linear_uniform({E, F, H}, H, gen));
  b1 = register_parameter("b1", linear_uniform({E, F}, H, gen));
  w2 = register_parameter("w2", linear_uniform({E, H, F}, F, gen));
  b2 = register_parameter("b2", linear_uniform({E, H}, F, gen));
  if (S > 0) {
    shared_w1 = register_parameter("shared_w1", linear_uniform({S * F, H}, H, gen));
    shared_b1 = register_parameter("shared_b1", linear_uniform({S * F}, H, gen));
    shared_w2 = register_parameter("shared_w2", linear_uniform({H, S * F}, F, gen));
    shared_b2 = register_parameter("shared_b2", linear_uniform({S, H}, F, gen));
  }
  if (c.bias_balancing_rate > 0) selection_bias = register_buffer("selection_bias", at::zeros({E}));
}

int64_t MoELayer::params_per_expert() const {
  return (w1.numel() + b1.numel() + w2.numel() + b2.numel()) / w1.size(0);
}

void MoELayer::set_group(std::shared_ptr<dist::Group> group, bool expert_parallel) {
  group_ = std::move(group);
  expert_parallel_ = group_ && expert_parallel;
}

void MoELayer::require_all_experts() const {
  for (const at::Tensor* t : {&w1, &b1, &w2, &b2}) {
    TORCH_CHECK(t->size(0) == config_.num_experts, "this model holds only ", t->size(0), " of its ",
                config_.num_experts, " experts: an expert-parallel train call failed before it could gather "
                "them back; load the last checkpoint into a new model");
  }
}

at::Tensor MoELayer::run_experts(const at::Tensor& rows, const at::Tensor& offsets, const ExpertLayers& layers) {
  if (expert_parallel_) return sharded_expert_ffn(rows, offsets, w1, b1, w2, b2, group_);  // own layers only
  require_all_experts();
  if (layers.first_t.defined()) return ops::expert_ffn_inference(rows, offsets, layers.first_t, b1, layers.w2, layers.b2);
  return ops::expert_ffn(rows, offsets, w1, b1, layers.w2, layers.b2);
}

MoELayer::ExpertLayers MoELayer::own_layers() const {
  ExpertLayers s{{}, w2, b2, shared_w2, {}};
  if (shared_b2.defined()) s.shared_b2 = shared_b2.sum(0);
  return s;
}

double MoELayer::experts_per_input() const {
  if (config_.routing != Routing::kExpertChoice) return static_cast<double>(config_.top_k);
  const double factor = config_.capacity_factor > 0 ? config_.capacity_factor : 1.0;
  return std::min(static_cast<double>(config_.num_experts), factor * static_cast<double>(config_.top_k));
}

int64_t MoELayer::capacity(int64_t T) const {
  if (config_.routing == Routing::kExpertChoice) {
    return expert_capacity(config_.capacity_factor > 0 ? config_.capacity_factor : 1.0, T, config_.top_k,
                           config_.num_experts);
  }
  return config_.capacity_factor > 0 ? expert_capacity(config_.capacity_factor, T, config_.top_k, config_.num_experts)
                                     : 0;
}

// Jitter is Switch's multiplicative input noise; the logit noise is noisy top-k gating at a fixed scale.
at::Tensor MoELayer::gate_logits(const at::Tensor& x) {
  at::Tensor gate_in = x;
  if (is_training() && config_.gate_jitter > 0) {
    const double eps = config_.gate_jitter;
    gate_in = x * at::empty_like(x).uniform_(1.0 - eps, 1.0 + eps, noise_gen_);
  }
  at::Tensor logits = ops::narrow_linear(gate_in, gate_w, gate_b);
  if (is_training() && config_.gate_noise > 0) {
    logits = logits + at::randn(logits.sizes(), noise_gen_, logits.options()) * config_.gate_noise;
  }
  return logits;
}

// Measured on the CPU even at weight 0 (the history reports it); on CUDA, where z-loss cannot be on yet,
// undefined, so that the captured step stays as it was.
at::Tensor MoELayer::measured_z_loss(const at::Tensor& logits) const {
  return config_.z_loss_weight > 0 || !logits.is_cuda() ? ops::router_z_loss(logits) : at::Tensor();
}

// The fused path: top-k gate kernel, dispatch plan, permute, experts, combine (CPU and CUDA). On the CPU
// (with AVX-512F) the gate, its softmax top-k and both losses are one autograd node (ops/fused_router.h)
// unless an option needs them apart: jitter of the gate's input or noise on its logits, forced routing,
// or the global counts of a group.
MoELayerOutput MoELayer::reference_routing(const at::Tensor& x, const ExpertLayers& layers) {
  const int64_t T = x.size(0), k = config_.top_k, E = config_.num_experts;
  const bool explores = is_training() && (config_.gate_jitter > 0 || config_.gate_noise > 0);
  if (!explores && !group_ && !config_.force_balanced_routing && ops::fused_router_applies(x, gate_w, gate_b)) {
    const ops::RouterOutput gate = ops::fused_router(x, gate_w, gate_b, k);
    MoELayerOutput out = top_k_dispatch(x, gate.idx, gate.weights, gate.counts, layers);
    out.aux_loss = gate.aux_loss;
    out.z_loss = gate.z_loss;
    out.routing.demand = gate.counts;
    out.routing.prob_sums = gate.prob_sums;
    return out;
  }
  const at::Tensor logits = gate_logits(x);
  const at::Tensor z_loss = measured_z_loss(logits);
  ops::GateOutput gate = ops::topk_gate(logits, k);
  at::Tensor weights = gate.weights;
  at::Tensor load = gate.counts;
  if (config_.force_balanced_routing) {
    // Assignment a = t*k+j goes to expert a mod E: k consecutive (distinct) experts per token, equal load.
    gate.idx = at::arange(T * k, gate.idx.options()).remainder_(E).view({T, k});
    weights = at::full({T, k}, 1.0 / static_cast<double>(k), gate.weights.options());
    load = at::bincount(gate.idx.reshape({-1}), {}, E);
  }
  MoELayerOutput out = top_k_dispatch(x, gate.idx, weights, load, layers);
  Balance balance = balancing_loss(gate.counts, gate.prob_sums, T);
  out.aux_loss = balance.loss;
  out.z_loss = z_loss;
  out.routing.demand = balance.demand;
  out.routing.prob_sums = gate.prob_sums.detach();
  return out;
}

MoELayerOutput MoELayer::top_k_dispatch(const at::Tensor& x, const at::Tensor& idx, const at::Tensor& weights,
                                        const at::Tensor& load, const ExpertLayers& layers) {
  const int64_t T = x.size(0), k = config_.top_k, E = config_.num_experts;
  MoELayerOutput out;
  const bool own_experts = !expert_parallel_ && !layers.first_t.defined() && layers.w2.is_same(w2);
  if (own_experts && ops::routed_experts_applies(x, weights, w1)) {
    require_all_experts();
    out.y = ops::routed_experts(x, idx, weights, w1, b1, w2, b2);  // the steps below, in one autograd node
  } else {
    const ops::DispatchPlan plan = ops::make_dispatch_plan(idx, E);
    const at::Tensor rows = ops::permute_tokens(x, plan);
    const at::Tensor expert_out = plan.padded()
                                      ? ops::expert_ffn_padded(rows, plan.capacity, w1, b1, layers.w2, layers.b2)
                                      : run_experts(rows, plan.offsets, layers);
    out.y = ops::combine_tokens(expert_out, weights, plan);
  }
  RoutingRecord& r = out.routing;
  r.load = load;
  // A training step reads the counts only (see RoutingRecord); inference builds the whole record even
  // on a model left in training mode (InferenceMode turns grad mode off).
  if (is_training() && at::GradMode::is_enabled()) return out;
  r.token = at::arange(T * k, idx.options()).div_(k, "floor");  // assignment t*k+j belongs to input t
  r.expert = idx.reshape({-1});
  r.weight = weights.detach().reshape({-1});
  r.dropped = at::zeros({}, idx.options());
  return out;
}

MoELayerOutput MoELayer::forward(const at::Tensor& x, const at::Tensor& raw) {
  return forward_with(x, raw, own_layers());
}

MoELayer::ExpertLayers MoELayer::inference_layers(const at::Tensor& proj) const {
  TORCH_CHECK(!expert_parallel_, "the experts are spread over the ranks: their layers cannot be composed");
  TORCH_CHECK(proj.dim() == 2 && proj.size(1) == config_.hidden_size, "proj must be [outputs, ",
              config_.hidden_size, "], got ", proj.sizes());
  // [E,F,H] -> [E,H,F]; [O,H]·[E,H,F] -> [E,O,F]; [E,O]
  ExpertLayers s{w1.transpose(1, 2).contiguous(), at::matmul(proj, w2), at::mm(b2, proj.t()), {}, {}};
  if (shared_w2.defined()) {
    s.shared_w2 = at::mm(proj, shared_w2);
    s.shared_b2 = at::mv(proj, shared_b2.sum(0));
  }
  return s;
}

MoELayerOutput MoELayer::forward_with(const at::Tensor& x, const at::Tensor& raw, const ExpertLayers& layers) {
  TORCH_CHECK(!expert_parallel_ || layers.w2.is_same(w2), "under expert parallelism the layer runs its own experts");
  const int64_t T = x.size(0), k = config_.top_k, E = config_.num_experts;
  const ExpertsFn experts = [this, &layers](const at::Tensor& rows, const at::Tensor& offsets) {
    return run_experts(rows, offsets, layers);
  };
  MoELayerOutput out;
  if (config_.routing == Routing::kHash) {
    const at::Tensor zero = at::zeros({}, x.options());
    TORCH_CHECK(raw.defined() && raw.size(0) == T, "hash routing needs the model input");
    const at::Tensor input = raw.contiguous();
    at::Tensor idx = at::empty({T, k}, at::kLong);
    kernels::row_hash_experts(input.data_ptr<float>(), T, input.size(1), E, k, idx.data_ptr<int64_t>());
    const Assignments a = assign_choices(idx, at::full({T, k}, 1.0 / static_cast<double>(k), x.options()), E,
                                         capacity(T));
    out.y = run_assignments(x, a, experts);
    out.aux_loss = zero;
    out.z_loss = zero;
    out.routing = record_of(a, a.demand.to(x.scalar_type()) / static_cast<double>(k));  // uniform over the k
  } else if (config_.routing == Routing::kSoftmaxTopK && config_.capacity_factor == 0 &&
             config_.bias_balancing_rate == 0) {
    out = reference_routing(x, layers);
  } else {
    const at::Tensor logits = gate_logits(x);
    out.z_loss = measured_z_loss(logits);
    if (config_.routing == Routing::kExpertChoice) {
      const at::Tensor probs = at::softmax(logits, 1);
      const Assignments a = expert_choice(probs, capacity(T));
      out.y = run_assignments(x, a, experts);
      out.aux_loss = at::zeros({}, x.options());
      out.routing = record_of(a, probs.sum(0));
    } else {
      // Softmax scores or sigmoid affinities; the aux loss sees them normalised per input (DeepSeek-V3's
      // balance loss for sigmoid affinities).
      const bool sigmoid = config_.routing == Routing::kSigmoidTopK;
      const at::Tensor scores = sigmoid ? at::sigmoid(logits) : at::softmax(logits, 1);
      const at::Tensor normalised = sigmoid ? scores / scores.sum(1, /*keepdim=*/true) : scores;
      const TopK choice = choose_top_k(scores, selection_bias, k);
      const Assignments a = assign_choices(choice.idx, choice.weights, E, capacity(T));
      out.y = run_assignments(x, a, experts);
      const at::Tensor prob_sums = normalised.sum(0);
      Balance balance = balancing_loss(a.demand, prob_sums, T);
      out.aux_loss = balance.loss;
      out.routing = record_of(a, prob_sums);
      out.routing.demand = balance.demand;
    }
  }
  if (shared_w1.defined()) {
    const at::Tensor h = at::addmm(shared_b1, x, shared_w1.t()).relu_();
    out.y = out.y + at::addmm(layers.shared_b2, h, layers.shared_w2.t());
  }
  return out;
}

MoELayer::Balance MoELayer::balancing_loss(const at::Tensor& demand, const at::Tensor& prob_sums, int64_t T) {
  if (!group_) return {ops::load_balancing_loss(demand, prob_sums, T, T), demand};
  // One small collective per forward: the counts and the number of inputs, summed over the ranks.
  at::Tensor both = at::cat({demand.to(at::kLong).cpu(), at::full({1}, T, at::kLong)});
  group_->all_reduce_sum(both, "expert counts of the global batch");
  const int64_t E = demand.size(0);
  const at::Tensor global = both.narrow(0, 0, E).to(demand.device());
  return {ops::load_balancing_loss(global, prob_sums, both[E].item<int64_t>(), T), global};
}

void MoELayer::balance(const at::Tensor& demand) {
  if (!selection_bias.defined()) return;
  torch::NoGradGuard no_grad;
  const at::Tensor load = demand.to(selection_bias.scalar_type());
  selection_bias.add_((load.mean() - load).sign_() * config_.bias_balancing_rate);
}

}  // namespace moe::model
