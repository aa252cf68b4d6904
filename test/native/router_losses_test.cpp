// The router's auxiliary losses (single autograd nodes on the CPU) against their ATen formulas, value and
// gradient.
#include "../../native/ops/router_losses.h"
#include "testing.h"

using namespace moe;
using moe::testing::expect_close;

MOE_TEST(router_z_loss_matches_aten_logsumexp_formula) {
  torch::manual_seed(60);
  for (const auto dtype : {torch::kDouble, torch::kFloat}) {
    const double tol = dtype == torch::kDouble ? 1e-12 : 1e-5;
    // Large logits too: the kernel must shift by the row maximum before exp.
    const auto base = torch::cat({torch::randn({6, 5}), torch::randn({2, 5}) * 40 + 100}).to(dtype);
    const auto x = base.clone().requires_grad_(), ref = base.clone().requires_grad_();
    const auto z = ops::router_z_loss(x), z_ref = at::logsumexp(ref, 1).pow(2).mean();
    expect_close(z, z_ref, tol, tol, "z-loss");
    (z * 3.0).backward();
    (z_ref * 3.0).backward();
    expect_close(x.grad(), ref.grad(), tol, tol, "z-loss gradient");
  }
  expect_close(ops::router_z_loss(torch::zeros({0, 4})), torch::tensor(0.0f), 0, 0, "no inputs");
}

MOE_TEST(load_balancing_loss_matches_aten_dot_formula) {
  torch::manual_seed(61);
  const auto counts = torch::tensor({5, 0, 2, 9}, torch::kLong);
  const auto p = (torch::rand({4}, torch::kDouble) * 3).requires_grad_(), p_ref = p.detach().clone().requires_grad_();
  // f_e from 16 inputs' counts, P_e over 12 inputs (a data-parallel rank's share).
  const auto loss = ops::load_balancing_loss(counts, p, 16, 12);
  const auto ref = at::dot(counts.to(torch::kDouble) / 16.0, p_ref) * (4.0 / 12.0);
  expect_close(loss, ref, 1e-12, 1e-12, "balance loss");
  (loss * 0.1).backward();
  (ref * 0.1).backward();
  expect_close(p.grad(), p_ref.grad(), 1e-12, 1e-12, "balance loss gradient");
  expect_close(ops::load_balancing_loss(counts, p, 0, 12), torch::tensor(0.0, torch::kDouble), 0, 0, "no inputs");
}
