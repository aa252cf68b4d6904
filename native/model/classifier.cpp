#include "classifier.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/autograd.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>

#include <torch/cuda.h>

#include "../ops/cuda_support.h"
#include "../ops/input_linear.h"
#include "../ops/narrow_linear.h"
#include "dropout.h"
#include "init.h"
#include "moe_layer.h"
#include "prepared_weights.h"

namespace moe::model {
namespace {

// Inference on prepared weights has no backward: refused under grad mode (the weights are inference
// tensors, which autograd cannot save).
void check_no_grad() {
  TORCH_CHECK(!at::GradMode::is_enabled(),
              "Classifier::inference runs without autograd: call it under c10::InferenceMode or torch::NoGradGuard");
}

// Linear(in->H) -> ReLU, shared by both models; skips zero inputs when most are zero (ops/input_linear.h).
// On the CPU the weight is stored transposed, [in, H]: the layout both the zero-skipping product and its
// weight gradient use, so no step transposes it. On CUDA (no zero-skipping there) it keeps PyTorch's
// [H, in]. named_state() always shows [H, in].
struct InputBlock {
  at::Tensor w, b;
  bool transposed = false;

  void init(torch::nn::Module& m, int64_t In, int64_t H, at::Generator& gen, bool cpu) {
    transposed = cpu;
    const at::Tensor weight = linear_uniform({H, In}, In, gen);  // drawn in PyTorch's order either way
    w = transposed ? m.register_parameter("input_w_t", weight.t().contiguous())
                   : m.register_parameter("input_w", weight);
    b = m.register_parameter("input_b", linear_uniform({H}, In, gen));
  }
  at::Tensor operator()(const at::Tensor& x) const {
    return ops::input_linear(x, transposed ? w : w.t(), b).relu_();
  }
  at::Tensor weight() const { return transposed ? w.t() : w; }
};

// Dropout of the hidden activations in training (config.dropout), from a generator seeded by the model's
// seed, so that a run repeats.
struct HiddenDropout {
  explicit HiddenDropout(const ModelConfig& c)
      : p(c.dropout), gen(at::make_generator<at::CPUGeneratorImpl>(c.seed ^ 0x64726f70ULL)) {}
  at::Tensor operator()(const at::Tensor& h, bool training) { return training ? dropout(h, p, gen) : h; }
  // Distributed training: the ranks' generators are in step (same seed), so each rank would draw the same
  // masks for its share of the batch. A fresh draw mixed with the rank gives every rank its own stream.
  void fork_for_rank(int rank) {
    if (p == 0) return;
    const uint64_t base = static_cast<uint64_t>(at::randint(INT64_MAX, {1}, gen, at::kLong).item<int64_t>());
    gen.set_current_seed(base ^ (0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(rank + 1)));
  }
  double p;
  at::Generator gen;
};

class MoEClassifierModel : public Classifier {
 public:
  explicit MoEClassifierModel(const ModelConfig& c) : Classifier(c), dropout_(c) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);
    const int64_t In = c.input_size, H = c.hidden_size, C = c.num_classes;
    input_.init(*this, In, H, gen, c.device != "cuda");
    moe_ = register_module("moe", std::make_shared<MoELayer>(c, gen));
    out_w_ = register_parameter("output_w", linear_uniform({C, H}, H, gen));
    out_b_ = register_parameter("output_b", linear_uniform({C}, H, gen));
  }

  ForwardResult forward(const at::Tensor& x) override {
    MoELayerOutput m = moe_->forward(dropout_(input_(x), is_training()), x);
    const at::Tensor y = dropout_(m.y, is_training());
    return ForwardResult{ops::narrow_linear(y, out_w_, out_b_), m.aux_loss, m.z_loss, m.routing};
  }

  InferenceFn inference() override {
    if (moe_->expert_parallel() || !prepares_inference(config_, is_training())) return Classifier::inference();
    check_no_grad();
    const WeightsKey key = weights_key({&moe_->w1, &moe_->w2, &moe_->b2, &moe_->shared_w2, &moe_->shared_b2, &out_w_});
    std::shared_ptr<const MoELayer::ExpertLayers> composed =
        prepared_.get(key, [&] { return moe_->inference_layers(out_w_); });
    return [this, composed](const at::Tensor& x) {
      MoELayerOutput m = moe_->forward_with(input_(x), x, *composed);
      return ForwardResult{m.y.add_(out_b_), m.aux_loss, m.z_loss, m.routing};
    };
  }

  void after_step(const ForwardResult& out) override { moe_->balance(out.routing.demand); }
  void set_process_group(std::shared_ptr<dist::Group> group, bool expert_parallel) override {
    if (group) dropout_.fork_for_rank(group->rank());
    moe_->set_group(std::move(group), expert_parallel);
  }
  std::vector<at::Tensor> expert_parameters() override { return {moe_->w1, moe_->b1, moe_->w2, moe_->b2}; }
  void require_all_experts() const override { moe_->require_all_experts(); }

  ParamCount param_count() const override {
    // The experts counted from the config, not the tensors: during an expert-parallel train call each
    // rank holds only its slice of them, and the rest are added here.
    ParamCount pc;
    for (const auto& p : parameters()) pc.total += p.numel();
    pc.total += (moe_->num_experts() - moe_->w1.size(0)) * moe_->params_per_expert();
    const double unused = static_cast<double>(moe_->num_experts()) - moe_->experts_per_input();
    pc.active = pc.total - std::llround(unused * static_cast<double>(moe_->params_per_expert()));
    return pc;
  }

  NamedTensors named_state() override {
    require_all_experts();
    NamedTensors s = {{"input.weight", input_.weight()}, {"input.bias", input_.b}};
    if (moe_->has_gate()) {
      s.emplace_back("moe.gate.weight", moe_->gate_w);
      s.emplace_back("moe.gate.bias", moe_->gate_b);
    }
    if (moe_->selection_bias.defined()) s.emplace_back("moe.gate.selection_bias", moe_->selection_bias);
    for (int64_t e = 0; e < moe_->num_experts(); ++e) {
      const std::string p = "moe.experts." + std::to_string(e) + ".";
      s.emplace_back(p + "fc1.weight", moe_->w1[e]);
      s.emplace_back(p + "fc1.bias", moe_->b1[e]);
      s.emplace_back(p + "fc2.weight", moe_->w2[e]);
      s.emplace_back(p + "fc2.bias", moe_->b2[e]);
    }
    // Shared experts: views of the stacked tensors, named as separate FFN modules.
    const int64_t F = config_.expert_hidden_size;
    for (int64_t e = 0; e < config_.shared_experts; ++e) {
      const std::string p = "moe.shared_experts." + std::to_string(e) + ".";
      s.emplace_back(p + "fc1.weight", moe_->shared_w1.narrow(0, e * F, F));
      s.emplace_back(p + "fc1.bias", moe_->shared_b1.narrow(0, e * F, F));
      s.emplace_back(p + "fc2.weight", moe_->shared_w2.narrow(1, e * F, F));
      s.emplace_back(p + "fc2.bias", moe_->shared_b2[e]);
    }
    s.emplace_back("output.weight", out_w_);
    s.emplace_back("output.bias", out_b_);
    return s;
  }

 private:
  InputBlock input_;
  std::shared_ptr<MoELayer> moe_;
  at::Tensor out_w_, out_b_;
  HiddenDropout dropout_;
  PreparedWeights<MoELayer::ExpertLayers> prepared_;  // inference's composed expert layers (inference())
  void drop_prepared_weights() override { prepared_.clear(); }
};

class DenseClassifierModel : public Classifier {
 public:
  explicit DenseClassifierModel(const ModelConfig& c) : Classifier(c), dropout_(c) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);
    const int64_t In = c.input_size, H = c.hidden_size, F = c.expert_hidden_size, C = c.num_classes;
    input_.init(*this, In, H, gen, c.device != "cuda");
    fc1_w_ = register_parameter("fc1_w", linear_uniform({F, H}, H, gen));
    fc1_b_ = register_parameter("fc1_b", linear_uniform({F}, H, gen));
    fc2_w_ = register_parameter("fc2_w", linear_uniform({H, F}, F, gen));
    fc2_b_ = register_parameter("fc2_b", linear_uniform({H}, F, gen));
    out_w_ = register_parameter("output_w", linear_uniform({C, H}, H, gen));
    out_b_ = register_parameter("output_b", linear_uniform({C}, H, gen));
  }

  ForwardResult forward(const at::Tensor& x) override {
    const at::Tensor h = at::addmm(fc1_b_, dropout_(input_(x), is_training()), fc1_w_.t()).relu_();
    const at::Tensor y = dropout_(at::addmm(fc2_b_, h, fc2_w_.t()), is_training());
    return ForwardResult{ops::narrow_linear(y, out_w_, out_b_), at::Tensor(), at::Tensor(), {}};
  }

  void set_process_group(std::shared_ptr<dist::Group> group, bool) override {
    if (group) dropout_.fork_for_rank(group->rank());
  }

  InferenceFn inference() override {
    if (!prepares_inference(config_, is_training())) return Classifier::inference();
    check_no_grad();
    // out·(fc2·a + b2) + b = (out·fc2)·a + (out·b2 + b)
    const WeightsKey key = weights_key({&fc2_w_, &fc2_b_, &out_w_, &out_b_});
    std::shared_ptr<const ComposedOutput> composed = prepared_.get(key, [&] {
      return ComposedOutput{at::mm(out_w_, fc2_w_), at::addmv(out_b_, out_w_, fc2_b_)};
    });
    return [this, composed](const at::Tensor& x) {
      const at::Tensor h = at::addmm(fc1_b_, input_(x), fc1_w_.t()).relu_();
      return ForwardResult{ops::narrow_linear(h, composed->w, composed->b), at::Tensor(), at::Tensor(), {}};
    };
  }

  ParamCount param_count() const override {
    ParamCount pc;
    for (const auto& p : parameters()) pc.total += p.numel();
    pc.active = pc.total;
    return pc;
  }

  NamedTensors named_state() override {
    return {{"input.weight", input_.weight()}, {"input.bias", input_.b}, {"ffn.fc1.weight", fc1_w_},
            {"ffn.fc1.bias", fc1_b_},   {"ffn.fc2.weight", fc2_w_}, {"ffn.fc2.bias", fc2_b_},
            {"output.weight", out_w_},  {"output.bias", out_b_}};
  }

 private:
  struct ComposedOutput {
    at::Tensor w, b;  // out·fc2 [C,F], out·fc2_b + out_b [C]
  };
  InputBlock input_;
  at::Tensor fc1_w_, fc1_b_, fc2_w_, fc2_b_, out_w_, out_b_;
  HiddenDropout dropout_;
  PreparedWeights<ComposedOutput> prepared_;  // inference's composed output layer (inference())
  void drop_prepared_weights() override { prepared_.clear(); }
};

}  // namespace

void Classifier::load_state(const NamedTensors& state) {
  torch::NoGradGuard no_grad;  // before named_state(): its expert views are then plain views, safe to write
  std::map<std::string, at::Tensor> given;
  for (const auto& [name, t] : state) {
    TORCH_CHECK_VALUE(given.emplace(name, t).second, "model state names tensor '", name, "' twice");
  }
  NamedTensors own = named_state();
  for (const auto& [name, param] : own) {
    auto it = given.find(name);
    TORCH_CHECK_VALUE(it != given.end(), "model state is missing tensor '", name, "' (expected shape ",
                      param.sizes(), ")");
    TORCH_CHECK_VALUE(it->second.sizes() == param.sizes(), "tensor '", name, "' has shape ",
                      it->second.sizes(), " but the model's config needs ", param.sizes());
    TORCH_CHECK_TYPE(it->second.scalar_type() == at::kFloat, "tensor '", name, "' must be float32, got ",
                     it->second.scalar_type());
  }
  TORCH_CHECK_VALUE(given.size() == own.size(), "model state has ", given.size(), " tensors but the model has ",
                    own.size(), " (unexpected extra tensors)");
  weights_changed();  // (the copies bump the views' version counters too; this also frees the copy now)
  for (auto& [name, param] : own) param.copy_(given.at(name));
}

at::Device Classifier::device() const { return parameters().front().device(); }

bool prepares_inference(const ModelConfig& c, bool training) {
  if (training || c.device == "cuda" || c.num_classes >= c.hidden_size) return false;
  static const bool enabled = [] {
    const char* v = std::getenv("TORCH_MOE_PREPARE_INFERENCE");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

Classifier::InferenceFn Classifier::inference() {
  return [this](const at::Tensor& x) { return forward(x); };
}

std::shared_ptr<Classifier> make_classifier(const ModelConfig& config) {
  validate(config);
  if (config.device == "cuda") {
    ops::require_cuda_kernels();
    TORCH_CHECK_VALUE(torch::cuda::is_available(), "device 'cuda' needs a visible NVIDIA GPU, but CUDA reports "
                      "none (check the driver and CUDA_VISIBLE_DEVICES); use 'cpu'");
  }
  std::shared_ptr<Classifier> model;
  if (config.kind == ModelKind::kMoE) {
    model = std::make_shared<MoEClassifierModel>(config);
  } else {
    model = std::make_shared<DenseClassifierModel>(config);
  }
  // Initialised on the CPU from the seed, then moved: the same seed gives the same weights on every device.
  if (config.device == "cuda") model->to(at::Device(at::kCUDA, 0));
  return model;
}

}  // namespace moe::model
