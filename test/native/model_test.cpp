// Model-level checks: parameter counts of the reference configs, the MoE layer against a naive per-token
// MoE (softmax gate, top-k, renormalise, weighted expert sum) including the aux loss, seeded
// reproducibility of init and training, and state round trips with their error cases.
#include "../../native/ops/router_losses.h"
#include "../../native/model/classifier.h"
#include "../../native/model/dropout.h"
#include "../../native/model/epoch_sums.h"
#include "../../native/model/metrics.h"
#include "../../native/model/moe_layer.h"
#include "../../native/model/prepared_weights.h"
#include "../../native/model/step_phases.h"
#include "../../native/model/trainer.h"
#include "testing.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/record_function.h>

#include <map>

using namespace moe;
using moe::testing::expect_close;
using moe::testing::expect_equal;

namespace {

model::ModelConfig reference_config(model::ModelKind kind) {
  model::ModelConfig c;
  c.kind = kind;
  return c;  // defaults are the reference experiment: 784 -> 256, 8 experts of 256 -> 128 -> 256, top-2
}

// A model small enough to train in milliseconds.
model::ModelConfig small_config(int64_t inputs, int64_t experts, int64_t classes) {
  return moe::testing::small_moe_config(inputs, 16, 8, experts, classes);
}

}  // namespace

MOE_TEST(parameter_counts_of_the_reference_models) {
  const auto moe = model::make_classifier(reference_config(model::ModelKind::kMoE))->param_count();
  EXPECT_TRUE(moe.total == 732946, "MoE total ", moe.total);
  EXPECT_TRUE(moe.active == 337426, "MoE active ", moe.active);
  const auto dense = model::make_classifier(reference_config(model::ModelKind::kDense))->param_count();
  EXPECT_TRUE(dense.total == 269450 && dense.active == 269450, "dense ", dense.total, "/", dense.active);
}

MOE_TEST(moe_layer_matches_naive_per_token_moe) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const int64_t H = 12, F = 7, E = 6, k = 2, T = 23;
  model::MoELayer layer(moe::testing::small_moe_config(H, H, F, E, 3), gen);
  EXPECT_TRUE(layer.top_k() == k, "top-k ", layer.top_k());
  torch::manual_seed(30);
  const auto x = torch::randn({T, H});
  const auto out = layer.forward(x);
  auto y_ref = torch::zeros({T, H});
  auto f = torch::zeros({E});
  auto P = torch::zeros({E});
  for (int64_t t = 0; t < T; ++t) {
    const auto p = torch::softmax(torch::mv(layer.gate_w, x[t]) + layer.gate_b, 0);
    P += p;
    const auto [vals, ids] = p.topk(k);
    const auto w = vals / vals.sum();
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = ids[j].item<int64_t>();
      f[e] += 1;
      const auto h = torch::relu(torch::mv(layer.w1[e], x[t]) + layer.b1[e]);
      y_ref[t] += w[j] * (torch::mv(layer.w2[e], h) + layer.b2[e]);
    }
  }
  expect_close(out.y, y_ref, 1e-5, 1e-4, "MoE layer output vs per-token loop");
  const double aux_ref = (E * (f / T) * (P / T)).sum().item<double>();  // N * sum f_i P_i
  expect_close(out.aux_loss, torch::tensor(aux_ref), 1e-6, 1e-5, "aux loss vs hand formula");
}

MOE_TEST(aux_loss_equals_k_at_perfect_balance) {
  // 8 experts, 16 tokens, top-2: every expert gets 4 assignments and mean probability 1/8.
  const auto counts = torch::full({8}, 4, torch::kLong);
  const auto prob_sums = torch::full({8}, 16.0 / 8);
  expect_close(ops::load_balancing_loss(counts, prob_sums, 16, 16), torch::tensor(2.0), 1e-6, 0, "balanced aux");
  // All load on one expert with all its probability: N * 1 * ... = 8 * (2 * 1) -> f_0 = 2, P_0 = 1.
  auto c1 = torch::zeros({8}, torch::kLong);
  c1[0] = 32;
  auto p1 = torch::zeros({8});
  p1[0] = 16;
  expect_close(ops::load_balancing_loss(c1, p1, 16, 16), torch::tensor(16.0), 1e-6, 0, "collapsed aux");
}

MOE_TEST(seeded_models_and_training_are_reproducible) {
  auto cfg = small_config(20, 8, 3);
  cfg.seed = 42;
  torch::manual_seed(31);
  const auto inputs = torch::rand({150, 20});
  const auto labels = torch::randint(0, 3, {150}, torch::kLong);
  model::TrainConfig tc;
  tc.epochs = 2;
  tc.batch_size = 16;
  tc.shuffle_seed = 7;
  std::vector<torch::Tensor> finals;
  std::vector<double> losses;
  for (int run = 0; run < 2; ++run) {
    auto m = model::make_classifier(cfg);
    model::TrainerState st;
    std::atomic<bool> stop{false};
    const auto r = model::train(*m, st, inputs, labels, tc, nullptr, stop);
    EXPECT_TRUE(r.epochs.size() == 2, "two epochs");
    losses.push_back(r.epochs.back().loss);
    std::vector<torch::Tensor> flat;
    for (const auto& p : m->parameters()) flat.push_back(p.detach().reshape({-1}));
    finals.push_back(torch::cat(flat));
  }
  expect_equal(finals[0], finals[1], "parameters after two seeded runs");
  EXPECT_TRUE(losses[0] == losses[1], "losses ", losses[0], " vs ", losses[1]);
  cfg.seed = 43;
  const auto other = model::make_classifier(cfg);
  std::vector<torch::Tensor> flat;
  for (const auto& p : other->parameters()) flat.push_back(p.detach().reshape({-1}));
  EXPECT_TRUE(!torch::equal(torch::cat(flat), finals[0]), "another seed must give other weights");
}

namespace {
// n inputs of 10 values labelled by whether their first value is positive: a rule small_config(10, 4, 2)
// learns in a few epochs.
struct SignTask {
  torch::Tensor inputs, labels;
};
SignTask sign_task(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  const auto inputs = torch::randn({n, 10});
  return {inputs, (inputs.select(1, 0) > 0).to(torch::kLong)};
}
// Batches of 32 at learning rate 1e-2: the sign task's training settings.
model::TrainConfig sign_task_training(int64_t epochs) {
  model::TrainConfig tc;
  tc.epochs = epochs;
  tc.batch_size = 32;
  tc.learning_rate = 1e-2;
  return tc;
}
}  // namespace

MOE_TEST(training_reduces_loss_and_stop_flag_ends_early) {
  const auto [inputs, labels] = sign_task(256, 32);
  auto m = model::make_classifier(small_config(10, 4, 2));
  model::TrainerState st;
  std::atomic<bool> stop{false};
  const model::TrainConfig tc = sign_task_training(15);
  const auto r = model::train(*m, st, inputs, labels, tc, nullptr, stop);
  EXPECT_TRUE(r.epochs.back().classification_loss < 0.5 * r.epochs.front().classification_loss, "loss fell from ",
              r.epochs.front().classification_loss, " to ", r.epochs.back().classification_loss);
  EXPECT_TRUE(r.epochs.back().accuracy > 0.9, "accuracy ", r.epochs.back().accuracy);
  stop.store(true);
  const auto stopped = model::train(*m, st, inputs, labels, tc, nullptr, stop);
  EXPECT_TRUE(stopped.stopped && stopped.epochs.empty(), "a set stop flag must end training before any step");
}

namespace {
std::vector<std::string> marked_phases;  // what the user-scope observer below saw, in order
std::unique_ptr<at::ObserverContext> on_user_scope(const at::RecordFunction& fn) {
  marked_phases.emplace_back(fn.name());
  return nullptr;
}
}  // namespace

// bench:step times the training loop by these marks: each step must mark the four phases, in order,
// once each (a 100-input epoch at batch 32 is 4 steps, the last of 4 inputs).
MOE_TEST(training_loop_marks_each_step_phase_once_per_step_in_order) {
  const auto [inputs, labels] = sign_task(100, 33);
  auto m = model::make_classifier(small_config(10, 4, 2));
  model::TrainerState st;
  std::atomic<bool> stop{false};
  model::TrainConfig tc;
  tc.epochs = 2;
  tc.batch_size = 32;
  marked_phases.clear();
  {
    struct Observing {  // removes the observer also when train throws
      at::CallbackHandle handle = at::addThreadLocalCallback(
          at::RecordFunctionCallback(on_user_scope).scopes({at::RecordScope::USER_SCOPE}));
      ~Observing() { at::removeCallback(handle); }
    } observing;
    model::train(*m, st, inputs, labels, tc, nullptr, stop);
  }
  std::vector<std::string> want;
  const auto& names = model::kStepPhaseNames;
  for (int step = 0; step < 8; ++step) want.insert(want.end(), names.begin(), names.end());
  EXPECT_TRUE(marked_phases == want, "marked ", marked_phases.size(), " phases, want ", want.size(),
              " (4 per step, 8 steps)");
}

MOE_TEST(state_round_trip_and_errors) {
  auto cfg = reference_config(model::ModelKind::kMoE);
  cfg.seed = 1;
  auto a = model::make_classifier(cfg);
  cfg.seed = 2;
  auto b = model::make_classifier(cfg);
  model::NamedTensors state;
  for (auto& [name, t] : a->named_state()) state.emplace_back(name, t.detach().clone());
  EXPECT_TRUE(state.size() == 6 + 8 * 4, "tensor count ", state.size());
  EXPECT_TRUE(state[4].first == "moe.experts.0.fc1.weight", "PyTorch-style names, got ", state[4].first);
  b->load_state(state);
  const auto x = torch::rand({9, 784});
  torch::NoGradGuard ng;
  expect_equal(b->forward(x).logits, a->forward(x).logits, "logits after load_state");

  auto expect_value_error = [&](model::NamedTensors s, const char* what) {
    bool threw = false;
    try {
      b->load_state(s);
    } catch (const c10::ValueError&) {
      threw = true;
    }
    EXPECT_TRUE(threw, what);
  };
  auto missing = state;
  missing.pop_back();
  expect_value_error(missing, "a missing tensor must raise ValueError");
  auto misshaped = state;
  misshaped[0].second = torch::zeros({3, 3});
  expect_value_error(misshaped, "a mis-shaped tensor must raise ValueError");
}

MOE_TEST(classifier_gradients_match_a_dense_masked_reference) {
  // The whole training loss (cross-entropy + w * aux) and every parameter gradient, against a reference
  // written another way: every expert runs on every token and a [T,E] mask of the renormalised top-k
  // weights mixes them; aux from one-hot counts and the mean softmax. float64 so the bound can be tight.
  auto cfg = small_config(12, 6, 5);
  cfg.top_k = 2;
  cfg.seed = 9;
  auto model = model::make_classifier(cfg);
  model->to(torch::kDouble);
  torch::manual_seed(33);
  const int64_t T = 40, E = cfg.num_experts, k = cfg.top_k;
  const auto x = torch::randn({T, cfg.input_size}, torch::kDouble);
  const auto y = torch::randint(0, cfg.num_classes, {T}, torch::kLong);
  const double w = 0.1;

  const auto out = model->forward(x);
  (torch::cross_entropy_loss(out.logits, y) + w * out.aux_loss).backward();

  std::map<std::string, torch::Tensor> p;
  for (auto& [name, t] : model->named_state()) p[name] = t.detach().clone().requires_grad_();
  const auto h = torch::relu(torch::addmm(p["input.bias"], x, p["input.weight"].t()));
  const auto probs = torch::softmax(torch::addmm(p["moe.gate.bias"], h, p["moe.gate.weight"].t()), 1);
  const auto top = std::get<1>(probs.topk(k, 1));
  const auto sel = probs.gather(1, top);
  const auto mask = torch::zeros({T, E}, torch::kDouble).scatter(1, top, sel / sel.sum(1, true));
  auto mixed = torch::zeros_like(h);
  for (int64_t e = 0; e < E; ++e) {
    const std::string pre = "moe.experts." + std::to_string(e) + ".";
    const auto a = torch::relu(torch::addmm(p[pre + "fc1.bias"], h, p[pre + "fc1.weight"].t()));
    mixed = mixed + mask.select(1, e).unsqueeze(1) * torch::addmm(p[pre + "fc2.bias"], a, p[pre + "fc2.weight"].t());
  }
  const auto logits = torch::addmm(p["output.bias"], mixed, p["output.weight"].t());
  const auto f = torch::zeros({E}, torch::kDouble).index_add(0, top.reshape({-1}), torch::ones({T * k}, torch::kDouble)) / T;
  const auto aux = E * (f * probs.mean(0)).sum();
  expect_close(out.logits, logits, 1e-12, 1e-10, "logits");
  expect_close(out.aux_loss, aux, 1e-12, 1e-10, "aux");
  (torch::cross_entropy_loss(logits, y) + w * aux).backward();

  // Our gradients live on the stacked parameters; named_state() views of .grad() line up with the names.
  std::map<std::string, torch::Tensor> grads;
  for (const auto& item : model->named_parameters()) grads[item.key()] = item.value().grad();
  auto ours = [&](const std::string& name) -> torch::Tensor {
    if (name == "input.weight") return grads["input_w_t"].t();  // stored transposed
    if (name == "input.bias") return grads["input_b"];
    if (name == "output.weight") return grads["output_w"];
    if (name == "output.bias") return grads["output_b"];
    if (name == "moe.gate.weight") return grads["moe.gate_w"];
    if (name == "moe.gate.bias") return grads["moe.gate_b"];
    // moe.experts.<e>.fc<1|2>.<weight|bias>
    const auto e = std::stoll(name.substr(12, name.find('.', 12) - 12));
    const bool fc1 = name.find("fc1") != std::string::npos, weight = name.find("weight") != std::string::npos;
    return grads[std::string("moe.") + (weight ? "w" : "b") + (fc1 ? "1" : "2")][e];
  };
  int checked = 0;
  for (auto& [name, ref] : p) {
    expect_close(ours(name), ref.grad(), 1e-12, 1e-9, "grad of " + name);
    ++checked;
  }
  EXPECT_TRUE(checked == 6 + 4 * E, "checked ", checked, " tensors");
}

MOE_TEST(forced_balanced_routing_sends_tokens_round_robin) {
  auto c = small_config(12, 8, 4);
  c.top_k = 2;
  c.force_balanced_routing = true;
  auto forced = model::make_classifier(c);
  forced->eval();  // (training-mode forwards leave the assignment lists out of the record)
  const auto x = torch::randn({20, 12});
  const auto out = forced->forward(x);
  // assignment a = t*k + j goes to expert a mod E, with weight 1/k: equal load whatever the gate says
  const auto expected = torch::arange(40, torch::kLong).remainder(8).view({20, 2});
  expect_equal(out.routing.expert.view({20, 2}), expected, "forced routing");
  // The same model without the switch, given those choices by hand, computes the same logits: the
  // switch changes the routing only.
  c.force_balanced_routing = false;
  auto free = model::make_classifier(c);
  const auto params = free->named_parameters();
  const auto h = torch::relu(torch::addmm(params["input_b"], x, params["input_w_t"]));
  auto y = torch::zeros({20, 16});
  for (int64_t t = 0; t < 20; ++t) {
    for (int64_t j = 0; j < 2; ++j) {
      const int64_t e = (t * 2 + j) % 8;
      const auto a = torch::relu(torch::addmv(params["moe.b1"][e], params["moe.w1"][e], h[t]));
      y[t] += 0.5 * torch::addmv(params["moe.b2"][e], params["moe.w2"][e], a);
    }
  }
  const auto logits = torch::addmm(params["output_b"], y, params["output_w"].t());
  expect_close(out.logits, logits, 1e-5, 1e-4, "forced-routing logits vs a per-token loop");
}

MOE_TEST(dropout_zeroes_about_p_and_scales_the_rest_repeatably_with_its_generator) {
  const double p = 0.25;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const torch::Tensor x = torch::ones({400, 250}, torch::requires_grad());
  const torch::Tensor y = model::dropout(x, p, gen);
  const torch::Tensor kept = y.detach().ne(0);
  // Every value is 0 or 1/(1-p); the zeroed share is p within 4 standard deviations of a binomial.
  testing::expect_close(y.detach().masked_select(kept), torch::full({kept.sum().item<int64_t>()}, 1.0 / (1 - p)),
                        1e-6, 0, "kept values");
  const double zeroed = 1.0 - kept.to(torch::kDouble).mean().item<double>();
  const double sigma = std::sqrt(p * (1 - p) / static_cast<double>(x.numel()));
  EXPECT_TRUE(std::abs(zeroed - p) < 4 * sigma, "zeroed share ", zeroed, " vs p ", p);
  // d/dx sum(y * g) = mask/(1-p) * g, and with x = 1 that is y * g.
  const torch::Tensor g = torch::randn({400, 250});
  (y * g).sum().backward();
  testing::expect_close(x.grad(), y.detach() * g, 1e-6, 0, "gradient");
  // The same seed draws the same mask; p = 0 is the identity.
  at::Generator again = at::make_generator<at::CPUGeneratorImpl>(7);
  testing::expect_equal(model::dropout(x.detach(), p, again), y.detach(), "mask from the same seed");
  testing::expect_equal(model::dropout(x.detach(), 0, again), x.detach(), "p = 0");
}

// Inference composes the output layer into the last hidden layer (every expert's second layer, the shared
// experts', the dense FFN's); logits and routing must equal forward()'s up to float rounding, for every
// router, with capacity limits and with shared experts, for a service's single input and small batches
// as for an evaluation's many rows.
MOE_TEST(inference_with_the_output_layer_composed_matches_forward) {
  const std::vector<std::pair<const char*, std::function<void(model::ModelConfig&)>>> cases = {
      {"softmax top-k", [](model::ModelConfig&) {}},
      {"sigmoid top-k", [](model::ModelConfig& c) { c.routing = model::Routing::kSigmoidTopK; }},
      {"expert choice",
       [](model::ModelConfig& c) {
         c.routing = model::Routing::kExpertChoice;
         c.aux_loss_weight = 0;
       }},
      {"hash",
       [](model::ModelConfig& c) {
         c.routing = model::Routing::kHash;
         c.aux_loss_weight = 0;
       }},
      {"capacity 0.5", [](model::ModelConfig& c) { c.capacity_factor = 0.5; }},
      {"two shared experts", [](model::ModelConfig& c) { c.shared_experts = 2; }},
      {"dense", [](model::ModelConfig& c) { c.kind = model::ModelKind::kDense; }},
  };
  const int64_t In = 20;
  for (const auto& [name, set] : cases) {
    model::ModelConfig cfg = small_config(In, 4, 3);  // hidden 16, experts of 8, 4 experts, 3 classes
    set(cfg);
    // (so that the comparison below is not forward() against itself)
    EXPECT_TRUE(model::prepares_inference(cfg, false), name);
    auto m = model::make_classifier(cfg);
    m->eval();
    for (const int64_t T : {1, 21, 300}) {
      const std::string what = std::string(name) + ", " + std::to_string(T) + " rows: ";
      torch::manual_seed(3);
      const torch::Tensor x = torch::rand({T, In}) * (torch::rand({T, In}) < 0.3);  // mostly zeros, like pixels
      c10::InferenceMode inference;
      const model::ForwardResult ref = m->forward(x);
      const model::ForwardResult got = m->inference()(x);
      expect_close(got.logits, ref.logits, 1e-5, 1e-4, what + "logits");
      if (cfg.kind == model::ModelKind::kMoE) {
        expect_equal(got.routing.token, ref.routing.token, what + "routed inputs");
        expect_equal(got.routing.expert, ref.routing.expert, what + "experts");
        expect_equal(got.routing.weight, ref.routing.weight, what + "gate weights");
      }
    }
  }
}

// The composed weights are kept across calls, so they must follow every change of the parameters: a
// train() call (its Adam writes through raw pointers), load_state, and a direct in-place edit. After each,
// inference must equal forward() of the changed model, not of the model the weights were composed from.
MOE_TEST(prepared_inference_follows_every_change_of_the_weights) {
  const auto [inputs, labels] = sign_task(128, 5);
  for (const model::ModelKind kind : {model::ModelKind::kMoE, model::ModelKind::kDense}) {
    const std::string model_name = kind == model::ModelKind::kMoE ? "MoE: " : "dense: ";
    model::ModelConfig cfg = small_config(10, 4, 2);
    cfg.kind = kind;
    auto m = model::make_classifier(cfg);
    const auto matches_forward = [&](const std::string& after) {
      m->eval();
      c10::InferenceMode inference;
      const at::Tensor got = m->inference()(inputs).logits, want = m->forward(inputs).logits;
      expect_close(got, want, 1e-5, 1e-4, model_name + "inference after " + after);
      return got.clone();
    };
    const at::Tensor before = matches_forward("construction");

    model::TrainerState st;
    std::atomic<bool> stop{false};
    const model::TrainConfig tc = sign_task_training(1);
    // The first call moves the parameters into the loop's flat buffer (new addresses); the second keeps
    // them there and changes only their values.
    at::Tensor last = before;
    for (const char* call : {"a first train() call", "a second train() call"}) {
      m->train();
      model::train(*m, st, inputs, labels, tc, nullptr, stop);
      const at::Tensor now = matches_forward(call);
      EXPECT_TRUE(!now.allclose(last, 1e-3, 1e-3), model_name, call, " changed nothing: the test would not see a stale copy");
      last = now;
    }

    // The weights of a fresh model with another seed, through load_state.
    model::ModelConfig other = cfg;
    other.seed = cfg.seed + 1;
    m->load_state(model::make_classifier(other)->named_state());
    matches_forward("load_state");

    // An in-place edit of the output layer, which every composition reads.
    {
      torch::NoGradGuard no_grad;
      for (auto& [name, t] : m->named_state()) {
        if (name == "output.weight") t.mul_(-2.0);
      }
    }
    matches_forward("an in-place edit of output.weight");
  }
}

// The holder of prepared weights: one build per key, a rebuild when a source tensor changes in place, and
// a copy handed out earlier stays valid after a rebuild; clear() (weights_changed()) forces a rebuild.
MOE_TEST(prepared_weights_build_once_per_key) {
  model::PreparedWeights<at::Tensor> prepared;
  at::Tensor source = torch::ones({3});
  int builds = 0;
  const auto get = [&] {
    return prepared.get(model::weights_key({&source}), [&] {
      ++builds;
      return source * 2;
    });
  };
  const auto first = get(), again = get();
  EXPECT_TRUE(builds == 1 && first.get() == again.get(), "the same key must not rebuild (", builds, " builds)");
  source.add_(1);
  const auto changed = get();
  EXPECT_TRUE(builds == 2, "an in-place edit of the source must rebuild (", builds, " builds)");
  expect_equal(*changed, torch::full({3}, 4.0f), "rebuilt from the edited source");
  expect_equal(*first, torch::full({3}, 2.0f), "a copy handed out before the rebuild");
  prepared.clear();  // what weights_changed() does: the copy is freed at once, rebuilt when next asked for
  get();
  EXPECT_TRUE(builds == 3, "a cleared holder must rebuild (", builds, " builds)");
}

// Inference on prepared weights has no backward: under grad mode it is refused with a message that says
// how to call it, for both models.
MOE_TEST(prepared_inference_refuses_grad_mode) {
  for (const model::ModelKind kind : {model::ModelKind::kMoE, model::ModelKind::kDense}) {
    model::ModelConfig cfg = small_config(10, 4, 2);
    cfg.kind = kind;
    auto m = model::make_classifier(cfg);
    m->eval();
    std::string message;
    try {
      m->inference()(torch::rand({4, 10}));
    } catch (const c10::Error& e) {
      message = e.what_without_backtrace();
    }
    EXPECT_TRUE(message.find("InferenceMode") != std::string::npos, "grad mode must be refused, got '", message, "'");
  }
}

// Where inference composes the output layer: everywhere but in training, on CUDA, and where C >= H.
MOE_TEST(composing_the_output_layer_is_chosen_where_it_saves_work) {
  model::ModelConfig c = reference_config(model::ModelKind::kMoE);  // H 256, C 10
  EXPECT_TRUE(model::prepares_inference(c, false), "inference");
  EXPECT_TRUE(!model::prepares_inference(c, true), "never in training");
  c.num_classes = 256;
  EXPECT_TRUE(!model::prepares_inference(c, false), "C >= H saves nothing");
  c.num_classes = 10;
  c.device = "cuda";
  EXPECT_TRUE(!model::prepares_inference(c, false), "not on CUDA");
}

// The batch loss starts backward from its weighted terms at once; the gradients must be those of the
// summed objective, scaled (a data-parallel rank's share), z-loss included.
MOE_TEST(batch_loss_backward_from_its_terms_equals_the_summed_objective) {
  auto c = small_config(12, 8, 4);
  c.z_loss_weight = 0.3;
  auto m = model::make_classifier(c);
  const auto x = torch::rand({9, 12}), labels = torch::randint(0, 3, {9}, torch::kLong);
  const model::LossWeights weights = model::loss_weights(*m);
  auto grads_of = [&](bool from_terms) {
    for (auto& p : m->parameters()) p.mutable_grad() = torch::Tensor();
    const model::ForwardResult out = m->forward(x);
    const model::BatchLoss loss = model::batch_loss(out, labels, weights);
    EXPECT_TRUE(loss.terms.size() == 3, "cross-entropy, aux and z terms, got ", loss.terms.size());
    if (from_terms) {
      loss.backward(0.25);
    } else {
      ((loss.cross_entropy() + weights.aux * out.aux_loss + weights.z * out.z_loss) * 0.25).backward();
    }
    std::vector<torch::Tensor> g;
    for (auto& p : m->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  const auto got = grads_of(true), ref = grads_of(false);
  for (size_t i = 0; i < got.size(); ++i) expect_close(got[i], ref[i], 1e-7, 1e-5, "gradient " + std::to_string(i));
}

// predict's routing lists: per input, its assignments from forward()'s routing record by decreasing
// weight, batch after batch (ties in the record's order). The reference gathers them input by input from
// the batch's record and sorts each input's list stably (std::stable_sort). Expert choice gives inputs
// from zero to several experts; hash routing gives every assignment the same weight (all ties).
MOE_TEST(predict_lists_each_inputs_experts_by_decreasing_weight) {
  for (const model::Routing routing : {model::Routing::kSoftmaxTopK, model::Routing::kExpertChoice, model::Routing::kHash}) {
    const bool expert_choice = routing == model::Routing::kExpertChoice;
    const std::string name = expert_choice ? "expert choice: " : routing == model::Routing::kHash ? "hash: " : "top-2: ";
    model::ModelConfig cfg = small_config(20, 4, 3);
    cfg.routing = routing;
    if (routing != model::Routing::kSoftmaxTopK) cfg.aux_loss_weight = 0;
    auto m = model::make_classifier(cfg);
    m->eval();
    torch::manual_seed(11);
    const int64_t n = 10, batch = 4;  // batches of 4, 4 and 2
    const torch::Tensor x = torch::rand({n, 20});
    const model::Prediction p = model::predict(*m, x, batch, true);

    std::vector<int32_t> experts, offsets{0};
    std::vector<float> weights;
    std::vector<at::Tensor> probs;  // per batch: under expert choice an input's routing depends on its batch
    c10::InferenceMode inference;
    for (int64_t begin = 0; begin < n; begin += batch) {
      const int64_t size = std::min(batch, n - begin);
      const model::ForwardResult out = m->forward(x.narrow(0, begin, size));
      probs.push_back(at::softmax(out.logits, 1));
      const model::RoutingRecord& r = out.routing;
      for (int64_t i = 0; i < size; ++i) {
        std::vector<std::pair<float, int32_t>> mine;  // (weight, expert) in the record's order
        for (int64_t a = 0; a < r.token.numel(); ++a) {
          if (r.token[a].item<int64_t>() == i) mine.emplace_back(r.weight[a].item<float>(), r.expert[a].item<int32_t>());
        }
        std::stable_sort(mine.begin(), mine.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        for (const auto& [w, e] : mine) {
          experts.push_back(e);
          weights.push_back(w);
        }
        offsets.push_back(static_cast<int32_t>(experts.size()));
      }
    }
    expect_equal(p.routing_offsets, at::tensor(offsets, at::kInt), name + "offsets");
    expect_equal(p.experts, at::tensor(experts, at::kInt), name + "experts");
    expect_close(p.weights, at::tensor(weights, at::kFloat), 1e-6, 1e-6, name + "weights");
    expect_close(p.probs, at::cat(probs), 1e-5, 1e-5, name + "probabilities");
    if (expert_choice) {
      const at::Tensor per_input = p.routing_offsets.narrow(0, 1, n) - p.routing_offsets.narrow(0, 0, n);
      EXPECT_TRUE(per_input.min().item<int32_t>() != per_input.max().item<int32_t>(),
                  "expert choice should give the inputs different expert counts here, got ", per_input);
    }
  }
}

MOE_TEST(epoch_sums_on_the_cpu_equal_the_device_ops) {
  // The CPU adds into the sums' memory; the reference is the ops the CUDA path runs (argmax, eq, sum,
  // add_), over three steps: float32 logits with a tie (the first index wins) and a NaN (argmax takes it),
  // a token-choice step with loads but no drop count, then float64 logits and no aux, z or routing (dense).
  model::EpochAccumulators sums(torch::zeros({1}), 3);
  double ce = 0, aux = 0, z = 0;
  int64_t correct = 0, dropped = 0;
  auto load = torch::zeros({3}, torch::kLong);
  auto step = [&](const model::ForwardResult& out, const torch::Tensor& ce_loss, const torch::Tensor& labels, double size) {
    sums.add_step(out, ce_loss, labels, size);
    ce += ce_loss.item<double>() * size;
    if (out.aux_loss.defined()) aux += out.aux_loss.item<double>() * size;
    if (out.z_loss.defined()) z += out.z_loss.item<double>() * size;
    if (out.routing.load.defined()) load += out.routing.load;
    if (out.routing.dropped.defined()) dropped += out.routing.dropped.item<int64_t>();
    correct += out.logits.argmax(1).eq(labels).sum().item<int64_t>();
  };
  model::ForwardResult moe_out;
  const float nan = std::nanf("");
  moe_out.logits = torch::tensor({1.0f, 3.0f, 3.0f, /**/ 2.0f, nan, 5.0f, /**/ 0.5f, 0.1f, 0.2f, /**/ nan, 9.0f, nan})
                       .view({4, 3});
  moe_out.aux_loss = torch::tensor(2.25f);
  moe_out.z_loss = torch::tensor(0.125f);
  moe_out.routing.load = torch::tensor({3, 4, 1}, torch::kLong);
  moe_out.routing.dropped = torch::tensor(2, torch::kLong);
  step(moe_out, torch::tensor(0.75f), torch::tensor({1, 1, 0, 0}, torch::kLong), 4);  // 4 of 4 right
  model::ForwardResult token_choice_out;  // a dropless token-choice step: loads, no drop count
  token_choice_out.logits = torch::randn({2, 3});
  token_choice_out.aux_loss = torch::tensor(2.0f);
  token_choice_out.routing.load = torch::tensor({1, 0, 3}, torch::kLong);
  step(token_choice_out, torch::tensor(0.5f), torch::tensor({2, 0}, torch::kLong), 2);
  model::ForwardResult dense_out;
  dense_out.logits = torch::randn({5, 3}, torch::kDouble);
  step(dense_out, torch::tensor(1.5, torch::kDouble), torch::tensor({0, 1, 2, 0, 1}, torch::kLong), 5);
  const auto read = sums.read();
  const auto expected = torch::cat({torch::tensor({ce, aux, z, static_cast<double>(correct), static_cast<double>(dropped)},
                                                  torch::kDouble),
                                    load.to(torch::kDouble)});
  expect_equal(read, expected, "the sums read after three steps");
  const model::EpochSums named = model::EpochAccumulators::unpack(read);
  EXPECT_TRUE(named.cross_entropy == ce && named.aux == aux && named.z == z, "unpack's losses, got ", named.cross_entropy,
              " ", named.aux, " ", named.z);
  EXPECT_TRUE(named.correct == correct && named.dropped == dropped, "unpack's counts, got ", named.correct, " ",
              named.dropped);
  expect_equal(torch::tensor(named.load, torch::kDouble), load.to(torch::kDouble), "unpack's loads");
  bool refused = false;
  try {
    model::EpochAccumulators::unpack(read.to(torch::kFloat));
  } catch (const c10::Error&) {
    refused = true;
  }
  EXPECT_TRUE(refused, "unpack should refuse a tensor that is not read()'s float64 layout");
  sums.zero();
  expect_equal(sums.read(), torch::zeros({8}, torch::kDouble), "the sums after zero()");
}
