// Dispatch plan, permute and combine against the naive reference kernels, a per-token mixing reference,
// and central differences in float64. Permutations and counts are compared exactly.
#include "../../native/kernels/combine.h"
#include "../../native/kernels/permute.h"
#include "../../native/ops/dispatch.h"
#include "testing.h"

using namespace moe;
using moe::testing::expect_close;
using moe::testing::expect_equal;
using moe::testing::random_choices;

namespace {

struct Shape {
  int64_t T, E, k, H;
};
// Includes experts that receive nothing (T*k < E), one token, k = E, and H = 1.
const std::vector<Shape> kShapes = {{1, 8, 2, 3}, {3, 8, 2, 5}, {37, 8, 2, 16}, {10, 4, 4, 1}, {0, 4, 2, 3}, {200, 16, 3, 7}};

}  // namespace

MOE_TEST(dispatch_plan_matches_stable_sort_reference) {
  torch::manual_seed(10);
  for (const auto& s : kShapes) {
    const auto idx = random_choices(s.T, s.E, s.k);
    const auto plan = ops::make_dispatch_plan(idx, s.E);
    const int64_t A = s.T * s.k;
    auto offsets = torch::empty({s.E + 1}, torch::kLong), s2a = torch::empty({A}, torch::kLong),
         a2s = torch::empty({A}, torch::kLong);
    kernels::dispatch_plan_ref(idx.data_ptr<int64_t>(), A, s.E, offsets.data_ptr<int64_t>(), s2a.data_ptr<int64_t>(),
                               a2s.data_ptr<int64_t>());
    const std::string at = c10::str(" T=", s.T, " E=", s.E, " k=", s.k);
    expect_equal(plan.offsets, offsets, "offsets" + at);
    expect_equal(plan.row_to_assignment, s2a, "sorted_to_assignment" + at);
    expect_equal(plan.assignment_to_row, a2s, "assignment_to_sorted" + at);
    // Independent check with PyTorch: a stable argsort of the expert ids.
    if (A > 0) {
      expect_equal(plan.row_to_assignment, std::get<1>(idx.reshape({-1}).sort(true, 0, false)),
                   "sorted_to_assignment vs torch.sort(stable)" + at);
    }
  }
}

MOE_TEST(permute_and_combine_match_reference_kernels) {
  torch::manual_seed(11);
  for (const auto& s : kShapes) {
    const int64_t A = s.T * s.k;
    const auto idx = random_choices(s.T, s.E, s.k);
    const auto plan = ops::make_dispatch_plan(idx, s.E);
    const auto x = torch::randn({s.T, s.H}, torch::kDouble).requires_grad_();
    const auto w = torch::rand({s.T, s.k}, torch::kDouble).requires_grad_();
    const auto rows = ops::permute_tokens(x, plan);
    const auto rows_in = rows.detach().clone().requires_grad_();  // combine's own input, to test it alone
    const auto y = ops::combine_tokens(rows_in, w, plan);
    const auto gy = torch::randn({s.T, s.H}, torch::kDouble);
    y.backward(gy);
    const auto grows = torch::randn({A, s.H}, torch::kDouble);
    rows.backward(grows);
    const std::string at = c10::str(" T=", s.T, " E=", s.E, " k=", s.k, " H=", s.H);

    auto rows_ref = torch::empty({A, s.H}, torch::kDouble);
    kernels::permute_forward_ref<double>(x.data_ptr<double>(), plan.row_to_assignment.data_ptr<int64_t>(), A,
                                         s.k, s.H, rows_ref.data_ptr<double>());
    expect_equal(rows, rows_ref, "permute forward" + at);
    auto gx_ref = torch::empty({s.T, s.H}, torch::kDouble);
    kernels::permute_backward_ref<double>(grows.data_ptr<double>(), plan.assignment_to_row.data_ptr<int64_t>(),
                                          s.T, s.k, s.H, gx_ref.data_ptr<double>());
    expect_close(x.grad(), gx_ref, 1e-12, 1e-12, "permute backward" + at);

    auto y_ref = torch::empty({s.T, s.H}, torch::kDouble);
    kernels::combine_forward_ref<double>(rows_in.data_ptr<double>(), w.data_ptr<double>(),
                                         plan.assignment_to_row.data_ptr<int64_t>(), s.T, s.k, s.H,
                                         y_ref.data_ptr<double>());
    expect_close(y, y_ref, 1e-12, 1e-12, "combine forward" + at);
    auto grows_ref = torch::empty({A, s.H}, torch::kDouble);
    auto gw_ref = torch::empty({s.T, s.k}, torch::kDouble);
    kernels::combine_backward_ref<double>(rows_in.data_ptr<double>(), w.data_ptr<double>(),
                                          plan.assignment_to_row.data_ptr<int64_t>(), gy.data_ptr<double>(), s.T,
                                          s.k, s.H, grows_ref.data_ptr<double>(), gw_ref.data_ptr<double>());
    expect_close(rows_in.grad(), grows_ref, 1e-12, 1e-12, "combine backward rows" + at);
    expect_close(w.grad(), gw_ref, 1e-12, 1e-12, "combine backward weights" + at);
  }
}

MOE_TEST(permute_then_combine_equals_per_token_mixing) {
  // With an elementwise "expert" f_e(v) = (e+1)*v, y[t] = sum_j w[t,j] * (idx[t,j]+1) * x[t]: a naive per-token loop.
  torch::manual_seed(12);
  const int64_t T = 29, E = 8, k = 2, H = 6;
  const auto idx = random_choices(T, E, k);
  const auto plan = ops::make_dispatch_plan(idx, E);
  const auto x = torch::randn({T, H}, torch::kDouble);
  const auto w = torch::rand({T, k}, torch::kDouble);
  auto rows = ops::permute_tokens(x, plan);
  const int64_t* off = plan.offsets.data_ptr<int64_t>();
  for (int64_t e = 0; e < E; ++e) rows.narrow(0, off[e], off[e + 1] - off[e]).mul_(e + 1);
  const auto y = ops::combine_tokens(rows, w, plan);
  auto y_ref = torch::zeros({T, H}, torch::kDouble);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < k; ++j) y_ref[t] += w[t][j] * (idx[t][j].item<int64_t>() + 1) * x[t];
  expect_close(y, y_ref, 1e-12, 1e-12, "per-token mixing");
}

MOE_TEST(combine_gradient_matches_finite_differences) {
  torch::manual_seed(13);
  const int64_t T = 5, E = 4, k = 2, H = 3;
  const auto idx = random_choices(T, E, k);
  const auto plan = ops::make_dispatch_plan(idx, E);
  const auto x = torch::randn({T, H}, torch::kDouble).requires_grad_();
  const auto w = torch::rand({T, k}, torch::kDouble).requires_grad_();
  const auto gy = torch::randn({T, H}, torch::kDouble);
  // Permute then a nonlinearity (so x's gradient depends on each routed copy) then combine.
  auto loss_of = [&](const torch::Tensor& xv, const torch::Tensor& wv) {
    return (ops::combine_tokens(ops::permute_tokens(xv, plan).tanh(), wv, plan) * gy).sum();
  };
  loss_of(x, w).backward();
  auto fx = [&](const torch::Tensor& xv) { torch::NoGradGuard g; return loss_of(xv, w.detach()).item<double>(); };
  auto fw = [&](const torch::Tensor& wv) { torch::NoGradGuard g; return loss_of(x.detach(), wv).item<double>(); };
  expect_close(x.grad(), moe::testing::finite_difference(fx, x), 1e-7, 1e-6, "d/dx by finite differences");
  expect_close(w.grad(), moe::testing::finite_difference(fw, w), 1e-7, 1e-6, "d/dw by finite differences");
}

MOE_TEST(dispatch_rejects_out_of_range_expert_ids) {
  bool threw = false;
  try {
    ops::make_dispatch_plan(torch::tensor({{0, 9}}, torch::kLong), 8);
  } catch (const c10::IndexError&) {
    threw = true;
  }
  EXPECT_TRUE(threw, "an expert id >= num_experts must raise IndexError");
}
