// The two models of the library: Linear(in->H) -> ReLU -> [MoE layer | one expert-shaped FFN] -> Linear(H->C).
// Parameters are named internally for speed (stacked experts); named_state() presents them under the
// names of the equivalent PyTorch modules, which is what model files contain.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

#include "../dist/group.h"
#include "config.h"
#include "routing.h"

namespace moe::model {

struct ForwardResult {
  at::Tensor logits;      // [T,C]
  at::Tensor aux_loss;    // scalar; undefined for the dense model
  at::Tensor z_loss;      // scalar; undefined for the dense model
  RoutingRecord routing;  // MoE only
};

struct ParamCount {
  int64_t total = 0;
  int64_t active = 0;  // per input: what one input uses (its routed experts, on average for expert choice)
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

class Classifier : public torch::nn::Module {
 public:
  explicit Classifier(ModelConfig config) : config_(std::move(config)) {}
  virtual ForwardResult forward(const at::Tensor& x) = 0;  // x: [T,in] float32
  // The forward pass for inference (the returned function runs each batch): logits and routing as forward()
  // gives them, up to float rounding. Where prepares_inference() says so, the models compose their output
  // layer into the last hidden layer (MoE: every expert's second layer, and its first layers transposed),
  // which shrinks those products from H to C outputs; the composed weights are kept until the parameters
  // change (model/prepared_weights.h). Without autograd (grad mode off: the prepared path refuses it) and
  // in eval mode; the parameters must not change while the returned function is in use.
  using InferenceFn = std::function<ForwardResult(const at::Tensor& x)>;
  virtual InferenceFn inference();
  virtual ParamCount param_count() const = 0;
  // PyTorch-module names -> tensors sharing storage with the parameters (experts as per-expert views).
  virtual NamedTensors named_state() = 0;
  // Copies every tensor of `state` into the parameters; throws naming a missing, extra or mis-shaped one.
  void load_state(const NamedTensors& state);
  // Whatever writes the parameters other than by ATen ops (the training loop's fused Adam writes through
  // raw pointers) calls this: inference's prepared weights are dropped, and rebuilt when next used.
  void weights_changed() { drop_prepared_weights(); }
  // Called by the training loop after each optimiser step with that step's forward (bias balancing).
  virtual void after_step(const ForwardResult&) {}
  // Data-parallel training: the group whose global batch the balancing statistics cover (nullptr: none);
  // with expert_parallel, the MoE layer's experts are spread over its ranks (model/expert_parallel.h).
  virtual void set_process_group(std::shared_ptr<dist::Group>, bool /*expert_parallel*/) {}
  // The parameters stacked over the experts ([E,...]; the MoE layer's w1, b1, w2, b2), which expert
  // parallelism slices; none for the dense model.
  virtual std::vector<at::Tensor> expert_parameters() { return {}; }
  // Throws when expert parallelism left this model with only some of its experts (a failed train call).
  virtual void require_all_experts() const {}
  const ModelConfig& config() const { return config_; }
  at::Device device() const;  // where the parameters live

 protected:
  virtual void drop_prepared_weights() {}  // the models' inference caches (model/prepared_weights.h)
  ModelConfig config_;
};

// Whether inference runs on prepared weights: the output layer [C,H] composed into the last layers and
// (MoE) the experts' first layers transposed for kernels::row_gemm, built once per weights (their cost,
// about one pass over the expert weights, is not paid per call). Not in training, not on CUDA (whose
// forward stays the one it captures and tests), and not when C >= H (composing saves nothing).
// Setting TORCH_MOE_PREPARE_INFERENCE=0 turns it off: inference runs forward() (for comparisons).
bool prepares_inference(const ModelConfig& config, bool training);

// Builds the model the config names, initialised from config.seed, on config.device. Validates the config.
std::shared_ptr<Classifier> make_classifier(const ModelConfig& config);

}  // namespace moe::model
