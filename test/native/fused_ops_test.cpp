// The CPU training path's two fused autograd nodes against references built from PyTorch ops: the router
// (gate linear map, softmax top-k, balancing and z losses) and the routed experts (permute, expert FFNs,
// weighted combine), values and every gradient.
#include <ATen/Parallel.h>

#include "../../native/kernels/row_gemm.h"
#include "../../native/model/classifier.h"
#include "../../native/model/metrics.h"
#include "../../native/ops/dispatch.h"
#include "../../native/ops/expert_ffn.h"
#include "../../native/ops/fused_router.h"
#include "../../native/ops/router_losses.h"
#include "../../native/ops/routed_experts.h"
#include "../../native/ops/topk_gate.h"
#include "testing.h"

using namespace moe;
using moe::testing::expect_close;
using moe::testing::expect_equal;

namespace {

torch::Tensor leaf(const torch::Tensor& t) { return t.detach().clone().requires_grad_(); }

// The weights differentiate through the gate kernel; the reference gets its logits from ATen's addmm.
void check_router_against_separate_ops(bool weights_reach_loss, bool z_reaches_loss) {
  torch::manual_seed(70);
  const int64_t T = 37, H = 24, E = 6, k = 2;
  const auto x = leaf(torch::randn({T, H})), w = leaf(torch::randn({E, H}) * 0.3), b = leaf(torch::randn({E}));
  const auto rx = leaf(x), rw = leaf(w), rb = leaf(b);
  const ops::RouterOutput got = ops::fused_router(x, w, b, k);
  const auto logits = at::addmm(rb, rx, rw.t());
  const ops::GateOutput gate = ops::topk_gate(logits, k);
  const auto aux = ops::load_balancing_loss(gate.counts, gate.prob_sums, T, T), z = ops::router_z_loss(logits);
  expect_equal(got.idx, gate.idx, "chosen experts");
  expect_equal(got.counts, gate.counts, "counts");
  expect_close(got.weights, gate.weights, 1e-5, 1e-5, "weights");
  expect_close(got.prob_sums, gate.prob_sums, 1e-5, 1e-5, "prob_sums");
  expect_close(got.aux_loss, aux, 1e-6, 1e-5, "aux loss");
  expect_close(got.z_loss, z, 1e-6, 1e-5, "z-loss");
  EXPECT_TRUE(!got.prob_sums.requires_grad(), "prob_sums reaches the loss through aux_loss only");
  const auto r = torch::randn({T, k});
  auto loss = got.aux_loss * 0.3, ref_loss = aux * 0.3;
  if (weights_reach_loss) {
    loss = loss + (got.weights * r).sum();
    ref_loss = ref_loss + (gate.weights * r).sum();
  }
  if (z_reaches_loss) {
    loss = loss + got.z_loss * 0.7;
    ref_loss = ref_loss + z * 0.7;
  }
  loss.backward();
  ref_loss.backward();
  expect_close(x.grad(), rx.grad(), 1e-5, 1e-4, "grad x");
  expect_close(w.grad(), rw.grad(), 1e-5, 1e-4, "grad gate_w");
  expect_close(b.grad(), rb.grad(), 1e-5, 1e-4, "grad gate_b");
}

// y[t] = sum_j weights[t,j] * FFN_{idx[t,j]}(x[t]), one token and one choice at a time in ATen ops.
torch::Tensor per_choice_reference(const torch::Tensor& x, const torch::Tensor& idx, const torch::Tensor& weights,
                                   const torch::Tensor& w1, const torch::Tensor& b1, const torch::Tensor& w2,
                                   const torch::Tensor& b2) {
  std::vector<torch::Tensor> rows;
  for (int64_t t = 0; t < x.size(0); ++t) {
    torch::Tensor y = torch::zeros({w2.size(1)});
    for (int64_t j = 0; j < idx.size(1); ++j) {
      const int64_t e = idx[t][j].item<int64_t>();
      const auto h = torch::relu(torch::mv(w1[e], x[t]) + b1[e]);
      y = y + weights[t][j] * (torch::mv(w2[e], h) + b2[e]);
    }
    rows.push_back(y);
  }
  return torch::stack(rows);
}

}  // namespace

MOE_TEST(fused_router_matches_addmm_topk_gate_and_loss_ops) {
  if (!kernels::row_gemm_available()) throw testing::Skipped("the fused router needs AVX-512F");
  check_router_against_separate_ops(true, true);
  check_router_against_separate_ops(true, false);  // z-loss measured, weight 0: its gradient is undefined
  check_router_against_separate_ops(false, true);  // only the losses reach the loss
}

MOE_TEST(fused_router_refuses_what_it_cannot_run) {
  const auto w = torch::randn({4, 8}), b = torch::randn({4});
  EXPECT_TRUE(!ops::fused_router_applies(torch::randn({3, 8}, torch::kDouble), w, b), "float64 is not fused");
  EXPECT_TRUE(!ops::fused_router_applies(torch::randn({0, 8}), w, b), "no inputs is not fused");
  bool threw = false;
  try {
    ops::fused_router(torch::randn({3, 8}), w, b, 5);
  } catch (const c10::Error& e) {
    threw = std::string(e.what_without_backtrace()).find("k must be in [1, num_experts=4]") != std::string::npos;
  }
  EXPECT_TRUE(threw, "k above the expert count is refused with the accepted range");
}

MOE_TEST(routed_experts_match_per_choice_reference) {
  torch::manual_seed(71);
  const int64_t T = 29, H = 16, F = 12, E = 5, k = 2;
  // Choices among the first 4 experts only: expert 4 gets no rows, and its gradients must be zeros.
  const auto idx = testing::random_choices(T, E - 1, k);
  const auto x = leaf(torch::randn({T, H})), weights = leaf(torch::rand({T, k}));
  const auto w1 = leaf(torch::randn({E, F, H}) * 0.3), b1 = leaf(torch::randn({E, F}));
  const auto w2 = leaf(torch::randn({E, H, F}) * 0.3), b2 = leaf(torch::randn({E, H}));
  const auto rx = leaf(x), rweights = leaf(weights), rw1 = leaf(w1), rb1 = leaf(b1), rw2 = leaf(w2), rb2 = leaf(b2);
  const auto y = ops::routed_experts(x, idx, weights, w1, b1, w2, b2);
  const auto ref = per_choice_reference(rx, idx, rweights, rw1, rb1, rw2, rb2);
  expect_close(y, ref, 1e-4, 1e-4, "forward");
  const auto g = torch::randn({T, H});
  y.backward(g);
  ref.backward(g);
  expect_close(x.grad(), rx.grad(), 1e-4, 1e-4, "grad x");
  expect_close(weights.grad(), rweights.grad(), 1e-4, 1e-4, "grad weights");
  expect_close(w1.grad(), rw1.grad(), 1e-4, 1e-4, "grad w1");
  expect_close(b1.grad(), rb1.grad(), 1e-4, 1e-4, "grad b1");
  expect_close(w2.grad(), rw2.grad(), 1e-4, 1e-4, "grad w2");
  expect_close(b2.grad(), rb2.grad(), 1e-4, 1e-4, "grad b2");
  expect_equal(w1.grad()[E - 1], torch::zeros({F, H}), "an expert without rows gets zero gradients");
}

MOE_TEST(routed_experts_refuse_out_of_range_experts) {
  const int64_t T = 3, H = 4, F = 2, E = 3;
  const auto idx = torch::tensor({0, 1, 2, 0, 1, 3}, torch::kLong).view({T, 2});
  std::string message;
  try {
    ops::routed_experts(torch::randn({T, H}), idx, torch::rand({T, 2}), torch::randn({E, F, H}), torch::randn({E, F}),
                        torch::randn({E, H, F}), torch::randn({E, H}));
  } catch (const c10::Error& e) {
    message = e.what_without_backtrace();
  }
  EXPECT_TRUE(message.find("idx values must be in [0, 3), got 3 at position 5") != std::string::npos,
              "message: ", message);
  message.clear();
  try {  // x of the wrong width: named as the caller knows it
    ops::routed_experts(torch::randn({T, H + 1}), idx.clamp_max(2), torch::rand({T, 2}), torch::randn({E, F, H}),
                        torch::randn({E, F}), torch::randn({E, H, F}), torch::randn({E, H}));
  } catch (const c10::Error& e) {
    message = e.what_without_backtrace();
  }
  EXPECT_TRUE(message.find("x must have 4 columns (w1's input size), got 5") != std::string::npos,
              "message: ", message);
}

// Enough rows to split the permute, the experts and the combine over two threads, and experts with more
// than 24 rows (their first products on transposed weights): against the separate ops, which run the
// same kernels, so the values must agree exactly.
MOE_TEST(routed_experts_match_separate_ops_on_two_threads) {
  torch::manual_seed(72);
  const int previous = at::get_num_threads();
  at::set_num_threads(2);
  struct Restore {
    int n;
    ~Restore() { at::set_num_threads(n); }
  } restore{previous};
  const int64_t T = 2048, H = 16, F = 12, E = 5, k = 2;
  const auto idx = testing::random_choices(T, E, k);
  const auto x = leaf(torch::randn({T, H})), weights = leaf(torch::rand({T, k}));
  const auto w1 = leaf(torch::randn({E, F, H}) * 0.3), b1 = leaf(torch::randn({E, F}));
  const auto w2 = leaf(torch::randn({E, H, F}) * 0.3), b2 = leaf(torch::randn({E, H}));
  const auto rx = leaf(x), rweights = leaf(weights), rw1 = leaf(w1), rb1 = leaf(b1), rw2 = leaf(w2), rb2 = leaf(b2);
  const auto y = ops::routed_experts(x, idx, weights, w1, b1, w2, b2);
  const ops::DispatchPlan plan = ops::make_dispatch_plan(idx, E);
  const auto ref = ops::combine_tokens(ops::expert_ffn(ops::permute_tokens(rx, plan), plan.offsets, rw1, rb1, rw2, rb2),
                                       rweights, plan);
  expect_equal(y, ref, "forward");
  const auto g = torch::randn({T, H});
  y.backward(g);
  ref.backward(g);
  expect_equal(x.grad(), rx.grad(), "grad x");
  expect_equal(weights.grad(), rweights.grad(), "grad weights");
  expect_equal(w1.grad(), rw1.grad(), "grad w1");
  expect_equal(b2.grad(), rb2.grad(), "grad b2");
}

// A training step leaves the per-assignment lists out of the routing record; inference fills them even
// on a model left in training mode (the C++ API does not switch it to eval).
MOE_TEST(inference_on_a_model_in_training_mode_lists_every_assignment) {
  torch::manual_seed(73);
  auto m = model::make_classifier(testing::small_moe_config(20, 16, 8, 4, 3));
  EXPECT_TRUE(m->is_training(), "a new classifier is in training mode");
  const auto x = torch::rand({6, 20});
  const model::Prediction p = model::predict(*m, x, 4, true);
  EXPECT_TRUE(p.experts.numel() == 6 * 2, "two experts per input, got ", p.experts.numel());
  const model::ForwardResult step = m->forward(x);  // grad mode on: a training step's forward
  EXPECT_TRUE(!step.routing.token.defined() && step.routing.load.defined(), "a training step keeps the counts only");
  EXPECT_TRUE(step.routing.load.sum().item<int64_t>() == 6 * 2, "load counts every assignment");
}
