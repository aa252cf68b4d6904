// The fused top-k gate against (1) the naive reference kernel, (2) PyTorch's own softmax/topk and
// autograd, and (3) central differences in float64; plus the tie rule and edge shapes.
#include "../../native/kernels/topk_gate.h"
#include "../../native/ops/topk_gate.h"
#include "testing.h"

using namespace moe;
using moe::testing::expect_close;
using moe::testing::expect_equal;

namespace {

struct Shape {
  int64_t T, E, k;
};
// Edge table: one token, k = 1, k = E, a single expert, no tokens, and a larger case.
const std::vector<Shape> kShapes = {{1, 8, 2}, {37, 8, 2}, {16, 8, 1}, {16, 8, 8}, {5, 1, 1}, {0, 8, 2}, {513, 32, 4}};

struct RefOut {
  torch::Tensor probs, idx, weights, counts, prob_sums;
};

template <typename scalar_t>
RefOut run_ref(const torch::Tensor& logits, int64_t k) {
  const int64_t T = logits.size(0), E = logits.size(1);
  auto o = logits.options();
  RefOut r{torch::empty({T, E}, o), torch::empty({T, k}, o.dtype(torch::kLong)), torch::empty({T, k}, o),
           torch::empty({E}, o.dtype(torch::kLong)), torch::empty({E}, o)};
  kernels::topk_gate_forward_ref<scalar_t>(logits.data_ptr<scalar_t>(), T, E, k, r.probs.data_ptr<scalar_t>(),
                                           r.idx.data_ptr<int64_t>(), r.weights.data_ptr<scalar_t>(),
                                           r.counts.data_ptr<int64_t>(), r.prob_sums.data_ptr<scalar_t>());
  return r;
}

}  // namespace

MOE_TEST(topk_gate_forward_matches_reference_kernel) {
  torch::manual_seed(1);
  for (const auto& s : kShapes) {
    const auto logits = torch::randn({s.T, s.E}) * 3;
    const auto ref = run_ref<float>(logits, s.k);
    const auto out = ops::topk_gate(logits, s.k);
    const std::string at = c10::str(" T=", s.T, " E=", s.E, " k=", s.k);
    // float32 softmax of O(1) logits: a few ulps of the largest probability.
    expect_close(out.probs, ref.probs, 1e-6, 1e-5, "probs" + at);
    expect_equal(out.idx, ref.idx, "idx" + at);
    expect_close(out.weights, ref.weights, 1e-6, 1e-5, "weights" + at);
    expect_equal(out.counts, ref.counts, "counts" + at);
    expect_close(out.prob_sums, ref.prob_sums, 1e-5, 1e-5, "prob_sums" + at);
  }
}

MOE_TEST(topk_gate_forward_matches_pytorch_softmax_topk) {
  torch::manual_seed(2);
  const auto logits = torch::randn({64, 8}, torch::kDouble);
  const auto out = ops::topk_gate(logits, 2);
  const auto probs = torch::softmax(logits, 1);
  const auto [vals, idx] = probs.topk(2, 1);
  expect_equal(out.idx, idx, "idx vs torch.topk");
  expect_close(out.weights, vals / vals.sum(1, true), 1e-12, 1e-12, "weights vs renormalised topk");
  expect_close(out.prob_sums, probs.sum(0), 1e-12, 1e-12, "prob_sums vs softmax.sum(0)");
  expect_equal(out.counts, torch::bincount(idx.reshape({-1}), {}, 8), "counts vs bincount");
}

MOE_TEST(topk_gate_tie_rule_lower_index_wins) {
  // A zero-initialised gate ties all experts: the first k experts must be chosen, in order.
  const auto out = ops::topk_gate(torch::zeros({4, 8}), 3);
  expect_equal(out.idx, torch::tensor({0, 1, 2}, torch::kLong).repeat({4, 1}), "idx on all-equal logits");
  expect_close(out.weights, torch::full({4, 3}, 1.0 / 3), 1e-7, 0, "weights on all-equal logits");
  // Partial tie: experts 5 and 2 tie for first place; 2 must come first.
  auto logits = torch::zeros({1, 6});
  logits[0][5] = 1;
  logits[0][2] = 1;
  expect_equal(ops::topk_gate(logits, 2).idx, torch::tensor({{2, 5}}, torch::kLong), "partial tie order");
}

MOE_TEST(topk_gate_backward_matches_reference_and_pytorch_autograd) {
  torch::manual_seed(3);
  for (const auto& s : kShapes) {
    const auto logits = (torch::randn({s.T, s.E}, torch::kDouble) * 2).requires_grad_();
    const auto gw = torch::randn({s.T, s.k}, torch::kDouble);
    const auto gps = torch::randn({s.E}, torch::kDouble);
    const auto out = ops::topk_gate(logits, s.k);
    ((out.weights * gw).sum() + (out.prob_sums * gps).sum()).backward();
    const std::string at = c10::str(" T=", s.T, " E=", s.E, " k=", s.k);

    // Reference kernel backward.
    auto ref_grad = torch::empty({s.T, s.E}, torch::kDouble);
    kernels::topk_gate_backward_ref<double>(out.probs.data_ptr<double>(), out.idx.data_ptr<int64_t>(),
                                            out.weights.detach().data_ptr<double>(), gw.data_ptr<double>(),
                                            gps.data_ptr<double>(), s.T, s.E, s.k, ref_grad.data_ptr<double>());
    expect_close(logits.grad(), ref_grad, 1e-12, 1e-10, "grad vs reference kernel" + at);

    // PyTorch autograd through softmax -> gather(selected) -> renormalise, with the same selection.
    const auto z = logits.detach().clone().requires_grad_();
    const auto p = torch::softmax(z, 1);
    const auto sel = p.gather(1, out.idx);
    const auto w = sel / sel.sum(1, true);
    ((w * gw).sum() + (p.sum(0) * gps).sum()).backward();
    expect_close(logits.grad(), z.grad(), 1e-12, 1e-10, "grad vs PyTorch autograd" + at);
  }
}

MOE_TEST(topk_gate_gradient_matches_finite_differences) {
  torch::manual_seed(4);
  const int64_t T = 6, E = 5, k = 2;
  // Well-separated logits so that +-eps never flips the top-k selection (the function is piecewise).
  const auto logits = (torch::randperm(T * E, torch::kDouble).reshape({T, E}) * 0.37).requires_grad_();
  const auto gw = torch::randn({T, k}, torch::kDouble);
  const auto gps = torch::randn({E}, torch::kDouble);
  auto loss_of = [&](const torch::Tensor& z) {
    torch::NoGradGuard ng;
    const auto o = ops::topk_gate(z, k);
    return ((o.weights * gw).sum() + (o.prob_sums * gps).sum()).item<double>();
  };
  const auto out = ops::topk_gate(logits, k);
  ((out.weights * gw).sum() + (out.prob_sums * gps).sum()).backward();
  expect_close(logits.grad(), moe::testing::finite_difference(loss_of, logits), 1e-7, 1e-6, "finite differences");
}

MOE_TEST(topk_gate_rejects_bad_arguments) {
  auto throws = [](auto fn) {
    try {
      fn();
    } catch (const c10::Error&) {
      return true;
    }
    return false;
  };
  EXPECT_TRUE(throws([] { ops::topk_gate(torch::zeros({2, 4}), 5); }), "k > E must throw");
  EXPECT_TRUE(throws([] { ops::topk_gate(torch::zeros({2, 4}), 0); }), "k = 0 must throw");
  EXPECT_TRUE(throws([] { ops::topk_gate(torch::zeros({2, 4}, torch::kLong), 1); }), "int logits must throw");
  EXPECT_TRUE(throws([] { ops::topk_gate(torch::zeros({8}), 1); }), "1-D logits must throw");
}
