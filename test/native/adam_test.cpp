// The flat fused Adam against PyTorch's own torch::optim::Adam over several steps on a few tensors.
#include "../../native/kernels/adam.h"
#include "../../native/ops/fused_adam.h"
#include "testing.h"

using namespace moe;
using moe::testing::expect_close;

MOE_TEST(fused_adam_matches_torch_optim_adam) {
  torch::manual_seed(3);
  const std::vector<std::vector<int64_t>> shapes = {{5, 3}, {7}, {2, 4, 3}};
  std::vector<torch::Tensor> params;
  for (const auto& s : shapes) params.push_back(torch::randn(s).requires_grad_(true));
  torch::optim::Adam reference(params, torch::optim::AdamOptions(0.01));

  std::vector<torch::Tensor> flat_parts;
  for (const auto& p : params) flat_parts.push_back(p.detach().reshape({-1}));
  const torch::Tensor flat = torch::cat(flat_parts), m = torch::zeros_like(flat), v = torch::zeros_like(flat);
  const torch::Tensor lr = torch::full({1}, 0.01f), step = torch::zeros({1}, torch::kLong);
  for (int it = 0; it < 5; ++it) {
    std::vector<torch::Tensor> grads;
    for (auto& p : params) {
      grads.push_back(torch::randn(p.sizes()));
      p.mutable_grad() = grads.back().clone();
    }
    reference.step();
    std::vector<torch::Tensor> g_parts;
    for (const auto& g : grads) g_parts.push_back(g.reshape({-1}));
    ops::fused_adam_step(flat, torch::cat(g_parts), m, v, lr, step, kernels::AdamHyper{});
  }
  std::vector<torch::Tensor> ref_parts;
  for (const auto& p : params) ref_parts.push_back(p.detach().reshape({-1}));
  EXPECT_TRUE(step.item<int64_t>() == 5, "step counter is ", step.item<int64_t>());
  expect_close(flat, torch::cat(ref_parts), 1e-6, 1e-5, "parameters after 5 Adam steps");
}
