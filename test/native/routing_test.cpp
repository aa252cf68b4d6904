// The routing methods of model/routing.h and the MoE layer's options, each against a naive per-input
// reference written from the papers' definitions (loops over inputs and experts, sorts, no assignment
// lists): outputs, balancing losses, gradients, capacity drops, bias balancing, hash routing, shared
// experts, parameter counts, and the errors of invalid combinations.
#include "../../native/ops/router_losses.h"
#include "../../native/model/classifier.h"
#include "../../native/model/moe_layer.h"
#include "../../native/model/routing.h"
#include "../../native/model/trainer.h"
#include "testing.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <numeric>
#include <tuple>
#include <vector>

using namespace moe;
using moe::testing::expect_close;
using moe::testing::expect_equal;

namespace {

constexpr int64_t kH = 6, kF = 5, kE = 4, kT = 13;

model::ModelConfig layer_config(model::Routing routing, int64_t k = 2) {
  auto c = moe::testing::small_moe_config(kH, kH, kF, kE, 3);
  c.routing = routing;
  c.top_k = k;
  if (routing == model::Routing::kExpertChoice || routing == model::Routing::kHash) c.aux_loss_weight = 0;
  return c;
}

std::shared_ptr<model::MoELayer> make_layer(const model::ModelConfig& c, uint64_t seed = 5) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto layer = std::make_shared<model::MoELayer>(c, gen);
  layer->eval();
  return layer;
}

struct Assignment {
  int64_t token, expert;
  torch::Tensor weight;  // scalar, differentiable
};

torch::Tensor expert_output(model::MoELayer& l, int64_t e, const torch::Tensor& x_t) {
  const auto h = torch::relu(torch::mv(l.w1[e], x_t) + l.b1[e]);
  return torch::mv(l.w2[e], h) + l.b2[e];
}

// y[t] = sum of weight * FFN_e(x[t]) over t's assignments, one input at a time.
torch::Tensor naive_moe(model::MoELayer& l, const torch::Tensor& x, const std::vector<Assignment>& list) {
  std::vector<torch::Tensor> rows(x.size(0), torch::zeros({x.size(1)}));
  for (const auto& a : list) rows[a.token] = rows[a.token] + a.weight * expert_output(l, a.expert, x[a.token]);
  return torch::stack(rows);
}

torch::Tensor gate_logits(model::MoELayer& l, const torch::Tensor& x) { return torch::addmm(l.gate_b, x, l.gate_w.t()); }

// Token choice as the papers state it: per input, sort the experts by score (+ bias), keep the first k,
// weights = chosen scores / their sum. Capacity: per expert, the (rank, input) pairs that chose it in
// increasing order; the first C stay.
std::vector<Assignment> naive_token_choice(const torch::Tensor& scores, const torch::Tensor& bias, int64_t k,
                                           int64_t capacity, int64_t* dropped) {
  const int64_t T = scores.size(0), E = scores.size(1);
  std::vector<std::tuple<int64_t, int64_t, int64_t>> chosen;  // (rank, token, expert)
  std::vector<torch::Tensor> weights(T);
  std::vector<std::vector<int64_t>> picks(T);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int64_t> order(E);
    std::iota(order.begin(), order.end(), 0);
    auto key = [&](int64_t e) { return scores[t][e].item<double>() + (bias.defined() ? bias[e].item<double>() : 0); };
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key(a) > key(b); });
    picks[t].assign(order.begin(), order.begin() + k);
    torch::Tensor sum = torch::zeros({});
    for (int64_t e : picks[t]) sum = sum + scores[t][e];
    weights[t] = sum;
    for (int64_t j = 0; j < k; ++j) chosen.emplace_back(j, t, picks[t][j]);
  }
  std::vector<Assignment> out;
  *dropped = 0;
  for (int64_t e = 0; e < E; ++e) {
    std::vector<std::pair<int64_t, int64_t>> wanting;  // (rank, token)
    for (const auto& [j, t, ex] : chosen) if (ex == e) wanting.emplace_back(j, t);
    std::sort(wanting.begin(), wanting.end());
    for (size_t i = 0; i < wanting.size(); ++i) {
      if (capacity > 0 && static_cast<int64_t>(i) >= capacity) {
        ++*dropped;
        continue;
      }
      const int64_t t = wanting[i].second;
      out.push_back({t, e, scores[t][e] / weights[t]});
    }
  }
  return out;
}

// Reruns `forward` and `reference` on the same parameters and compares outputs and every gradient.
void expect_same_output_and_gradients(model::MoELayer& layer, const torch::Tensor& y, const torch::Tensor& y_ref,
                                      const std::string& what) {
  expect_close(y, y_ref, 1e-5, 1e-4, what + ": output");
  const auto probe = torch::randn(y.sizes());
  layer.zero_grad();
  (y * probe).sum().backward({}, /*retain_graph=*/true);
  std::vector<torch::Tensor> grads;
  for (const auto& p : layer.parameters()) grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  layer.zero_grad();
  (y_ref * probe).sum().backward();
  const auto params = layer.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    const auto g = params[i].grad().defined() ? params[i].grad() : torch::zeros_like(params[i]);
    expect_close(grads[i], g, 1e-5, 1e-4, what + ": gradient " + std::to_string(i));
  }
}

}  // namespace

MOE_TEST(capacity_keeps_first_choices_first_and_drops_exactly_the_overflow) {
  // 5 inputs choose (first, second) experts; capacity 2. Rank by rank: the first choices fill expert 0
  // with inputs 0, 1 (input 3's is over) and give expert 1 input 2 and expert 3 input 4; then the second
  // choices: expert 1 takes input 0 and is full for input 1, expert 2 takes 2, expert 3 takes 3, and
  // input 4's second choice (expert 0) is over. Input by input instead, input 1 would take expert 1's last
  // slot before input 2's first choice: the order matters and this example tells them apart.
  const auto idx = torch::tensor({0, 1, 0, 1, 1, 2, 0, 3, 3, 0}, torch::kLong).view({5, 2});
  const auto w = torch::rand({5, 2});
  const auto a = model::assign_choices(idx, w, 4, 2);
  expect_equal(a.offsets, torch::tensor({0, 2, 4, 5, 7}, torch::kLong), "offsets");
  expect_equal(a.token, torch::tensor({0, 1, 0, 2, 2, 3, 4}, torch::kLong), "inputs by expert, in input order");
  expect_equal(a.weight, torch::stack({w[0][0], w[1][0], w[0][1], w[2][0], w[2][1], w[3][1], w[4][0]}), "weights");
  expect_equal(a.demand, torch::tensor({4, 3, 1, 2}, torch::kLong), "demand before drops");
  EXPECT_TRUE(a.dropped == 3, "dropped ", a.dropped);
  // Dropless: everything kept.
  const auto all = model::assign_choices(idx, w, 4, 0);
  EXPECT_TRUE(all.dropped == 0 && all.token.numel() == 10, "dropless kept ", all.token.numel());
  // The capacity formula: ceil(factor * T * k / E) in [1, T].
  EXPECT_TRUE(model::expert_capacity(1.0, 64, 2, 8) == 16, "capacity ", model::expert_capacity(1.0, 64, 2, 8));
  EXPECT_TRUE(model::expert_capacity(1.25, 10, 2, 8) == 4, "capacity ", model::expert_capacity(1.25, 10, 2, 8));
  EXPECT_TRUE(model::expert_capacity(0.01, 10, 1, 8) == 1 && model::expert_capacity(100, 10, 2, 8) == 10, "clamps");
}

MOE_TEST(softmax_and_sigmoid_token_choice_with_capacity_match_naive_reference) {
  torch::manual_seed(40);
  const auto x = torch::randn({kT, kH});
  for (auto routing : {model::Routing::kSoftmaxTopK, model::Routing::kSigmoidTopK}) {
    for (double factor : {0.0, 0.75}) {
      auto c = layer_config(routing);
      c.capacity_factor = factor;
      auto layer = make_layer(c);
      const auto out = layer->forward(x);
      const auto logits = gate_logits(*layer, x);
      const bool sigmoid = routing == model::Routing::kSigmoidTopK;
      const auto scores = sigmoid ? torch::sigmoid(logits) : torch::softmax(logits, 1);
      const int64_t C = factor > 0 ? model::expert_capacity(factor, kT, 2, kE) : 0;
      int64_t dropped = 0;
      const auto list = naive_token_choice(scores, {}, 2, C, &dropped);
      const std::string what = std::string(model::routing_name(routing)) + " capacity " + std::to_string(C);
      EXPECT_TRUE(out.routing.dropped.item<int64_t>() == dropped, what, ": dropped ", out.routing.dropped.item<int64_t>(),
                  " vs ", dropped);
      if (C > 0) EXPECT_TRUE(dropped > 0, what, ": the test must make some drops");
      // Aux loss: E * sum_i f_i P_i with f from the choices before drops and P from normalised scores.
      const auto normalised = sigmoid ? scores / scores.sum(1, true) : scores;
      auto f = torch::zeros({kE});
      for (int64_t t = 0; t < kT; ++t) {
        const auto top = std::get<1>(scores[t].topk(2));
        for (int64_t j = 0; j < 2; ++j) f[top[j].item<int64_t>()] += 1.0 / kT;
      }
      const auto aux_ref = kE * (f * normalised.mean(0)).sum();
      expect_close(out.aux_loss, aux_ref, 1e-6, 1e-5, what + ": aux loss");
      expect_same_output_and_gradients(*layer, out.y, naive_moe(*layer, x, list), what);
    }
  }
}

MOE_TEST(generic_softmax_path_equals_the_fused_gate_path) {
  // A capacity of T per expert drops nothing but takes the assignment-list path: it must agree with the
  // fused kernels (output, aux loss and gradients).
  torch::manual_seed(41);
  const auto x = torch::randn({kT, kH});
  auto fused = make_layer(layer_config(model::Routing::kSoftmaxTopK));
  auto c = layer_config(model::Routing::kSoftmaxTopK);
  c.capacity_factor = static_cast<double>(kE);  // C = ceil(E * T * k / E) -> clamped to T
  auto listed = make_layer(c);
  const auto a = fused->forward(x), b = listed->forward(x);
  EXPECT_TRUE(b.routing.dropped.item<int64_t>() == 0, "no drops");
  expect_close(b.y, a.y, 1e-6, 1e-5, "list path vs fused path");
  expect_close(b.aux_loss, a.aux_loss, 1e-6, 1e-5, "aux loss");
  expect_equal(b.routing.load, a.routing.load, "load");
  const auto probe = torch::randn(a.y.sizes());
  (a.y * probe).sum().backward();
  (b.y * probe).sum().backward();
  const auto pa = fused->named_parameters(), pb = listed->named_parameters();
  for (const auto& item : pa) expect_close(pb[item.key()].grad(), item.value().grad(), 1e-5, 1e-4, "grad " + item.key());
}

MOE_TEST(expert_choice_fills_every_expert_to_capacity_and_matches_naive_reference) {
  torch::manual_seed(42);
  const auto x = torch::randn({kT, kH});
  for (double factor : {0.0, 1.5}) {
    auto c = layer_config(model::Routing::kExpertChoice);
    c.capacity_factor = factor;
    auto layer = make_layer(c);
    const auto out = layer->forward(x);
    const int64_t C = model::expert_capacity(factor > 0 ? factor : 1.0, kT, 2, kE);
    expect_equal(out.routing.load, torch::full({kE}, C, torch::kLong), "every expert takes exactly C");
    const auto probs = torch::softmax(gate_logits(*layer, x), 1);
    std::vector<Assignment> list;
    std::vector<bool> taken(kT, false);
    for (int64_t e = 0; e < kE; ++e) {
      std::vector<int64_t> order(kT);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return probs[a][e].item<double>() > probs[b][e].item<double>(); });
      for (int64_t i = 0; i < C; ++i) {
        list.push_back({order[i], e, probs[order[i]][e]});
        taken[order[i]] = true;
      }
    }
    const int64_t untaken = std::count(taken.begin(), taken.end(), false);
    EXPECT_TRUE(out.routing.dropped.item<int64_t>() == untaken, "inputs no expert took ",
                out.routing.dropped.item<int64_t>(), " vs ", untaken);
    EXPECT_TRUE(out.aux_loss.item<double>() == 0, "no aux loss for expert choice");
    expect_same_output_and_gradients(*layer, out.y, naive_moe(*layer, x, list), "expert choice C=" + std::to_string(C));
  }
  // One input alone: C = 1, so every expert takes it (what docs/routing.md says about predicting one input).
  auto layer = make_layer(layer_config(model::Routing::kExpertChoice));
  const auto one = layer->forward(x.narrow(0, 0, 1)).routing;
  expect_equal(one.load, torch::ones({kE}, torch::kLong), "every expert takes the single input");
  EXPECT_TRUE(one.dropped.item<int64_t>() == 0, "nothing dropped");
}

MOE_TEST(hash_routing_ignores_the_weights_the_batch_and_the_position) {
  torch::manual_seed(43);
  const auto x = torch::randn({kT, kH});
  const auto c = layer_config(model::Routing::kHash);
  auto a = make_layer(c, 1), b = make_layer(c, 2);  // different weights
  EXPECT_TRUE(!a->gate_w.defined(), "hash routing has no gate");
  const auto ra = a->forward(x, x).routing;
  const auto rb = b->forward(x, x).routing;
  expect_equal(ra.expert, rb.expert, "routing does not depend on the weights");
  // Reversed batch, and each input alone: the same experts for the same input.
  const auto rev = torch::arange(kT - 1, -1, -1, torch::kLong);
  const auto rr = a->forward(x.index_select(0, rev), x.index_select(0, rev)).routing;
  for (int64_t t = 0; t < kT; ++t) {
    auto experts_of = [](const model::RoutingRecord& r, int64_t token) {
      auto e = r.expert.masked_select(r.token == token);
      return std::get<0>(e.sort());
    };
    const auto mine = experts_of(ra, t);
    EXPECT_TRUE(mine.numel() == 2 && mine[0].item<int64_t>() != mine[1].item<int64_t>(), "2 distinct experts");
    expect_equal(experts_of(rr, kT - 1 - t), mine, "same input, other position");
    expect_equal(experts_of(a->forward(x.narrow(0, t, 1), x.narrow(0, t, 1)).routing, 0), mine, "input alone");
  }
  // Output: equal weights 1/k over the hashed experts.
  std::vector<Assignment> list;
  for (int64_t i = 0; i < ra.token.numel(); ++i) {
    list.push_back({ra.token[i].item<int64_t>(), ra.expert[i].item<int64_t>(), torch::tensor(0.5)});
  }
  expect_close(a->forward(x, x).y, naive_moe(*a, x, list), 1e-5, 1e-4, "hash output");
  // Over many random inputs the load is near uniform (a hash, not a constant).
  const auto many = torch::randn({4000, kH});
  const auto load = a->forward(many, many).routing.load.to(torch::kDouble) / 8000.0;
  EXPECT_TRUE((load - 0.25).abs().max().item<double>() < 0.03, "hash load ", load);
}

MOE_TEST(bias_balancing_moves_the_bias_against_the_load_and_only_selects) {
  torch::manual_seed(44);
  auto c = layer_config(model::Routing::kSoftmaxTopK);
  c.bias_balancing_rate = 0.01;
  c.aux_loss_weight = 0;
  auto layer = make_layer(c);
  // demand 10, 2, 6, 6 (mean 6): expert 0 down, expert 1 up, experts 2 and 3 unchanged
  layer->balance(torch::tensor({10, 2, 6, 6}, torch::kLong));
  expect_close(layer->selection_bias, torch::tensor({-0.01f, 0.01f, 0.0f, 0.0f}), 1e-7, 0, "one step");
  // A large bias on expert 3 makes every input select it, with weights from the unbiased scores.
  layer->selection_bias.copy_(torch::tensor({0.0f, 0.0f, 0.0f, 10.0f}));
  const auto x = torch::randn({kT, kH});
  const auto out = layer->forward(x);
  EXPECT_TRUE(out.routing.load[3].item<int64_t>() == kT, "biased expert load ", out.routing.load);
  const auto scores = torch::softmax(gate_logits(*layer, x), 1);
  int64_t dropped = 0;
  const auto list = naive_token_choice(scores, layer->selection_bias, 2, 0, &dropped);
  expect_same_output_and_gradients(*layer, out.y, naive_moe(*layer, x, list), "biased selection");
  // In training, the step after the forward lowers the overloaded expert's bias.
  auto clf_config = moe::testing::small_moe_config(kH, 8, 4, kE, 3);
  clf_config.bias_balancing_rate = 0.05;
  auto clf = model::make_classifier(clf_config);
  model::TrainerState state;
  model::TrainConfig tc;
  tc.batch_size = 32;
  std::atomic<bool> stop{false};
  const auto inputs = torch::randn({32, kH});
  const auto labels = torch::randint(0, 3, {32}, torch::kLong);
  const auto before = clf->forward(inputs).routing.demand.to(torch::kFloat);
  model::train(*clf, state, inputs, labels, tc, {}, stop);
  const auto bias = clf->named_buffers()["moe.selection_bias"];
  expect_close(bias, (before.mean() - before).sign() * 0.05, 1e-7, 0, "bias after one step");
}

MOE_TEST(z_loss_noise_jitter_and_shared_experts_match_their_definitions) {
  torch::manual_seed(45);
  const auto x = torch::randn({kT, kH});
  auto c = layer_config(model::Routing::kSoftmaxTopK);
  c.gate_noise = 1.0;
  c.gate_jitter = 0.1;
  c.shared_experts = 2;
  auto layer = make_layer(c);
  // z-loss: mean over inputs of logsumexp(logits)^2 (eval mode: no noise)
  const auto out = layer->forward(x);
  const auto logits = gate_logits(*layer, x);
  double z = 0;
  for (int64_t t = 0; t < kT; ++t) z += std::pow(std::log(torch::exp(logits[t]).sum().item<double>()), 2);
  expect_close(out.z_loss, torch::tensor(z / kT), 1e-5, 1e-5, "z-loss");
  // Shared experts: the routed MoE of the same weights plus every shared FFN, per input.
  int64_t dropped = 0;
  auto list = naive_token_choice(torch::softmax(logits, 1), {}, 2, 0, &dropped);
  auto y_ref = naive_moe(*layer, x, list);
  for (int64_t s = 0; s < 2; ++s) {
    const auto w1 = layer->shared_w1.narrow(0, s * kF, kF), b1 = layer->shared_b1.narrow(0, s * kF, kF);
    const auto w2 = layer->shared_w2.narrow(1, s * kF, kF);
    y_ref = y_ref + torch::addmm(layer->shared_b2[s], torch::relu(torch::addmm(b1, x, w1.t())), w2.t());
  }
  expect_same_output_and_gradients(*layer, out.y, y_ref, "shared experts");
  // Noise: logits + N(0, sigma^2) in training, so over many inputs the difference has mean 0 and std sigma.
  {
    auto noisy_cfg = layer_config(model::Routing::kSoftmaxTopK);
    noisy_cfg.gate_noise = 2.0;
    auto l = make_layer(noisy_cfg);
    const auto many = torch::randn({5000, kH});
    const auto clean = gate_logits(*l, many);
    expect_close(l->gate_logits(many), clean, 1e-5, 1e-5, "no noise in eval mode");  // (sigma 2 noise would be far off)
    l->train();
    const auto diff = l->gate_logits(many) - clean;
    EXPECT_TRUE(std::abs(diff.mean().item<double>()) < 0.05 && std::abs(diff.std().item<double>() - 2.0) < 0.05,
                "noise mean ", diff.mean().item<double>(), " std ", diff.std().item<double>());
    // Jitter: the gate's input times u in [1-eps, 1+eps] elementwise, so |logit change| <= eps * sum |w x|,
    // and the bound is approached (the noise is not zero).
    auto jitter_cfg = layer_config(model::Routing::kSoftmaxTopK);
    jitter_cfg.gate_jitter = 0.1;
    auto j = make_layer(jitter_cfg);
    j->train();
    const auto change = (j->gate_logits(many) - gate_logits(*j, many)).abs();
    const auto bound = 0.1 * torch::mm(many.abs(), j->gate_w.abs().t());
    EXPECT_TRUE((change <= bound + 1e-5).all().item<bool>(), "jitter within its bound");
    EXPECT_TRUE((change / (bound + 1e-12)).max().item<double>() > 0.5, "jitter is applied");
  }
  // Noise and jitter: training only, seeded. Eval is deterministic; training differs from eval.
  expect_equal(layer->forward(x).y, out.y, "eval repeats");
  layer->train();
  const auto noisy = layer->forward(x).y;
  EXPECT_TRUE(!torch::allclose(noisy, out.y), "training adds noise");
  auto again = make_layer(c);
  again->train();
  expect_equal(again->forward(x).y, noisy, "the same seed gives the same noise");
}

MOE_TEST(parameter_counts_of_every_shape) {
  auto count = [](model::ModelConfig c) { return model::make_classifier(c)->param_count(); };
  model::ModelConfig ref;  // 784 -> 256, 8 x (256 -> 128 -> 256), top-2
  const int64_t in = 784 * 256 + 256, out = 256 * 10 + 10, expert = 2 * 256 * 128 + 128 + 256;
  auto gate = [](int64_t E) { return E * 256 + E; };
  auto pc = count(ref);
  EXPECT_TRUE(pc.total == in + out + gate(8) + 8 * expert && pc.active == in + out + gate(8) + 2 * expert, "ref");
  // Fine-grained: 32 experts of 256 -> 32, top-8.
  auto fine = ref;
  fine.num_experts = 32;
  fine.expert_hidden_size = 32;
  fine.top_k = 8;
  const int64_t small = 2 * 256 * 32 + 32 + 256;
  pc = count(fine);
  EXPECT_TRUE(pc.total == in + out + gate(32) + 32 * small && pc.active == in + out + gate(32) + 8 * small, "fine");
  // 1 shared + 7 routed, top-1: the shared expert is always active.
  auto shared = ref;
  shared.num_experts = 7;
  shared.top_k = 1;
  shared.shared_experts = 1;
  pc = count(shared);
  EXPECT_TRUE(pc.total == in + out + gate(7) + 8 * expert && pc.active == in + out + gate(7) + 2 * expert, "shared ",
              pc.total, "/", pc.active);
  // Hash: no gate. Expert choice: capacityFactor * k experts per input on average.
  auto hash = ref;
  hash.routing = model::Routing::kHash;
  hash.aux_loss_weight = 0;
  pc = count(hash);
  EXPECT_TRUE(pc.total == in + out + 8 * expert && pc.active == in + out + 2 * expert, "hash");
  auto ec = ref;
  ec.routing = model::Routing::kExpertChoice;
  ec.aux_loss_weight = 0;
  ec.capacity_factor = 1.5;
  pc = count(ec);
  EXPECT_TRUE(pc.active == in + out + gate(8) + 3 * expert, "expert choice ", pc.active);
  // Bias balancing adds a buffer, not parameters.
  auto biased = ref;
  biased.bias_balancing_rate = 0.01;
  EXPECT_TRUE(count(biased).total == count(ref).total, "bias is not a parameter");
}

MOE_TEST(invalid_routing_combinations_are_refused_with_the_reason) {
  auto expect_error = [](model::ModelConfig c, const std::string& needle) {
    try {
      model::make_classifier(c);
    } catch (const c10::ValueError& e) {
      const std::string msg = e.what_without_backtrace();
      EXPECT_TRUE(msg.find(needle) != std::string::npos, "message '", msg, "' should mention '", needle, "'");
      return;
    }
    EXPECT_TRUE(false, "expected an error mentioning ", needle);
  };
  model::ModelConfig c;
  auto ec = c;
  ec.routing = model::Routing::kExpertChoice;  // aux weight still 0.1
  expect_error(ec, "auxLossWeight has no effect with routing 'expert-choice'");
  ec.aux_loss_weight = 0;
  ec.top_k = 9;
  expect_error(ec, "topK must be an integer in [1, numExperts=8]");
  auto hash = c;
  hash.routing = model::Routing::kHash;
  hash.aux_loss_weight = 0;
  hash.gate_noise = 1;
  expect_error(hash, "which routing 'hash' does not have");
  auto bias = ec;
  bias.top_k = 2;
  bias.bias_balancing_rate = 0.1;
  expect_error(bias, "biasBalancing needs token-choice routing");
  auto neg = c;
  neg.bias_balancing_rate = -1;
  expect_error(neg, "biasBalancing.rate must be > 0");
  neg = c;
  neg.capacity_factor = -0.5;
  expect_error(neg, "capacityFactor must be > 0");
  neg = c;
  neg.gate_jitter = 1;
  expect_error(neg, "gateJitter must be in [0, 1)");
  auto forced = c;
  forced.capacity_factor = 1;
  forced.force_balanced_routing = true;
  expect_error(forced, "forceBalancedRouting is a benchmark switch of the reference routing only");
  // CUDA refuses what it has no kernels for, before looking for a GPU.
  auto cuda = c;
  cuda.device = "cuda";
  cuda.routing = model::Routing::kSigmoidTopK;
  expect_error(cuda, "routing 'sigmoid-topk' is not on CUDA yet");
  cuda.routing = model::Routing::kSoftmaxTopK;
  cuda.shared_experts = 1;
  expect_error(cuda, "sharedExperts is not on CUDA yet");
  EXPECT_TRUE(model::parse_routing("expert-choice") == model::Routing::kExpertChoice, "parse");
  try {
    model::parse_routing("topk");
    EXPECT_TRUE(false, "unknown routing accepted");
  } catch (const c10::ValueError& e) {
    EXPECT_TRUE(std::string(e.what_without_backtrace()).find("'softmax-topk', 'sigmoid-topk'") != std::string::npos,
                "lists the accepted names");
  }
}
