// The CUDA path against the CPU references: every kernel (forward and backward, shapes with empty
// experts, one token, k = 1 and k = E), the whole classifier (CUDA capacity layout vs CPU packed layout),
// and the device trainer (seeded runs repeat bit for bit; the captured graph gives the eager step's
// losses). Without a GPU or without the CUDA kernels each test prints why it is skipped.
#include <torch/cuda.h>

#include "../../native/kernels/adam.h"
#include "../../native/kernels/combine.h"
#include "../../native/kernels/permute.h"
#include "../../native/kernels/topk_gate.h"
#include "../../native/model/classifier.h"
#include "../../native/model/trainer.h"
#include "../../native/ops/cuda_support.h"
#include "../../native/ops/dispatch.h"
#include "../../native/ops/fused_adam.h"
#include "../../native/ops/input_linear.h"
#include "../../native/ops/topk_gate.h"
#include "testing.h"

using namespace moe;
using moe::testing::expect_close;
using moe::testing::expect_equal;
using moe::testing::random_choices;

namespace {

// Skips the calling test (with the reason) where the CUDA path cannot run.
void require_cuda() {
  if (!ops::cuda_kernels_built()) throw moe::testing::Skipped("this build has no CUDA kernels (libtorch without CUDA)");
  if (!torch::cuda::is_available()) throw moe::testing::Skipped("no CUDA device is visible");
}

const torch::Device kCuda(torch::kCUDA, 0);

struct Shape {
  int64_t T, E, k, H;
};
// One token, empty experts (T*k < E), k = 1, k = E, T = 0, and enough assignments for several plan chunks.
const std::vector<Shape> kShapes = {{1, 8, 2, 3},  {3, 8, 2, 5},   {37, 8, 1, 16},    {10, 4, 4, 1},
                                    {0, 4, 2, 3},  {200, 16, 3, 7}, {1500, 8, 2, 33}, {64, 64, 8, 9}};

}  // namespace

MOE_TEST(cuda_topk_gate_matches_reference) {
  require_cuda();
  torch::manual_seed(21);
  for (const auto& s : kShapes) {
    for (bool ties : {false, true}) {
      const auto logits_cpu = ties ? torch::zeros({s.T, s.E}) : torch::randn({s.T, s.E});
      auto logits = logits_cpu.to(kCuda).requires_grad_(true);
      const auto out = ops::topk_gate(logits, s.k);
      auto probs = torch::empty({s.T, s.E}), weights = torch::empty({s.T, s.k}), sums = torch::empty({s.E});
      auto idx = torch::empty({s.T, s.k}, torch::kLong), counts = torch::empty({s.E}, torch::kLong);
      kernels::topk_gate_forward_ref<float>(logits_cpu.data_ptr<float>(), s.T, s.E, s.k, probs.data_ptr<float>(),
                                            idx.data_ptr<int64_t>(), weights.data_ptr<float>(),
                                            counts.data_ptr<int64_t>(), sums.data_ptr<float>());
      const std::string at = c10::str(" T=", s.T, " E=", s.E, " k=", s.k, ties ? " (ties)" : "");
      expect_equal(out.idx.cpu(), idx, "idx" + at);
      expect_equal(out.counts.cpu(), counts, "counts" + at);
      expect_close(out.probs.cpu(), probs, 1e-7, 1e-6, "probs" + at);
      expect_close(out.weights.cpu(), weights, 1e-7, 1e-6, "weights" + at);
      expect_close(out.prob_sums.cpu(), sums, 1e-5, 1e-6, "prob_sums" + at);

      const auto gw = torch::randn({s.T, s.k}), gp = torch::randn({s.E});
      ((out.weights * gw.to(kCuda)).sum() + (out.prob_sums * gp.to(kCuda)).sum()).backward();
      auto grad_ref = torch::empty({s.T, s.E});
      kernels::topk_gate_backward_ref<float>(probs.data_ptr<float>(), idx.data_ptr<int64_t>(),
                                             weights.data_ptr<float>(), gw.data_ptr<float>(), gp.data_ptr<float>(),
                                             s.T, s.E, s.k, grad_ref.data_ptr<float>());
      expect_close(logits.grad().cpu(), grad_ref, 1e-6, 1e-5, "grad logits" + at);
    }
  }
}

MOE_TEST(cuda_dispatch_permute_combine_match_reference) {
  require_cuda();
  torch::manual_seed(22);
  for (const auto& s : kShapes) {
    const auto idx = random_choices(s.T, s.E, s.k);
    const auto plan = ops::make_dispatch_plan(idx.to(kCuda), s.E);
    const int64_t A = s.T * s.k, C = std::max<int64_t>(s.T, 1), R = s.E * C;
    const std::string at = c10::str(" T=", s.T, " E=", s.E, " k=", s.k, " H=", s.H);
    EXPECT_TRUE(plan.padded() && plan.capacity == C && plan.num_rows() == R, "capacity layout", at);
    auto counts = torch::empty({s.E}, torch::kLong), a2r = torch::empty({A}, torch::kLong),
         r2a = torch::empty({R}, torch::kLong);
    kernels::dispatch_plan_padded_ref(idx.data_ptr<int64_t>(), A, s.E, C, counts.data_ptr<int64_t>(),
                                      a2r.data_ptr<int64_t>(), r2a.data_ptr<int64_t>());
    expect_equal(plan.counts.cpu(), counts, "counts" + at);
    expect_equal(plan.assignment_to_row.cpu(), a2r, "assignment_to_row" + at);
    expect_equal(plan.row_to_assignment.cpu(), r2a, "row_to_assignment" + at);

    // float64 through the kernels: the comparison is then about indexing, not rounding.
    const auto x_cpu = torch::randn({s.T, s.H}, torch::kDouble);
    auto x = x_cpu.to(kCuda).requires_grad_(true);
    const auto rows = ops::permute_tokens(x, plan);
    auto rows_ref = torch::empty({R, s.H}, torch::kDouble);
    kernels::permute_forward_ref<double>(x_cpu.data_ptr<double>(), r2a.data_ptr<int64_t>(), R, s.k, s.H,
                                         rows_ref.data_ptr<double>());
    expect_equal(rows.cpu(), rows_ref, "permute forward" + at);
    const auto grows = torch::randn({R, s.H}, torch::kDouble);
    rows.backward(grows.to(kCuda));
    auto gx_ref = torch::empty({s.T, s.H}, torch::kDouble);
    kernels::permute_backward_ref<double>(grows.data_ptr<double>(), a2r.data_ptr<int64_t>(), s.T, s.k, s.H,
                                          gx_ref.data_ptr<double>());
    expect_close(x.grad().cpu(), gx_ref, 1e-12, 1e-12, "permute backward" + at);

    const auto rows_in_cpu = torch::randn({R, s.H}, torch::kDouble), w_cpu = torch::rand({s.T, s.k}, torch::kDouble);
    auto rows_in = rows_in_cpu.to(kCuda).requires_grad_(true), w = w_cpu.to(kCuda).requires_grad_(true);
    const auto y = ops::combine_tokens(rows_in, w, plan);
    auto y_ref = torch::empty({s.T, s.H}, torch::kDouble);
    kernels::combine_forward_ref<double>(rows_in_cpu.data_ptr<double>(), w_cpu.data_ptr<double>(),
                                         a2r.data_ptr<int64_t>(), s.T, s.k, s.H, y_ref.data_ptr<double>());
    expect_close(y.cpu(), y_ref, 1e-12, 1e-12, "combine forward" + at);
    const auto gy = torch::randn({s.T, s.H}, torch::kDouble);
    y.backward(gy.to(kCuda));
    auto grows_ref = torch::zeros({R, s.H}, torch::kDouble), gw_ref = torch::empty({s.T, s.k}, torch::kDouble);
    kernels::combine_backward_ref<double>(rows_in_cpu.data_ptr<double>(), w_cpu.data_ptr<double>(),
                                          a2r.data_ptr<int64_t>(), gy.data_ptr<double>(), s.T, s.k, s.H,
                                          grows_ref.data_ptr<double>(), gw_ref.data_ptr<double>());
    expect_close(rows_in.grad().cpu(), grows_ref, 1e-12, 1e-12, "combine backward rows" + at);
    expect_close(w.grad().cpu(), gw_ref, 1e-12, 1e-12, "combine backward weights" + at);
  }
}

MOE_TEST(cuda_fused_adam_matches_reference) {
  require_cuda();
  torch::manual_seed(23);
  const int64_t n = 100003;  // not a multiple of the block size
  auto p = torch::randn({n}), m = torch::zeros({n}), v = torch::zeros({n});
  auto pc = p.to(kCuda), mc = m.to(kCuda), vc = v.to(kCuda);
  const auto lr = torch::full({1}, 3e-3f, kCuda);
  const auto step = torch::zeros({1}, torch::TensorOptions(torch::kLong).device(kCuda));
  for (int64_t it = 1; it <= 4; ++it) {
    const auto g = torch::randn({n});
    kernels::adam_step_ref(p.data_ptr<float>(), g.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), n,
                           3e-3, it, kernels::AdamHyper{});
    ops::fused_adam_step(pc, g.to(kCuda), mc, vc, lr, step, kernels::AdamHyper{});
  }
  expect_close(pc.cpu(), p, 1e-6, 1e-5, "parameters");
  expect_close(vc.cpu(), v, 1e-9, 1e-5, "second moments");
}

MOE_TEST(cuda_classifier_matches_cpu_classifier) {
  require_cuda();
  torch::manual_seed(24);
  auto c = moe::testing::small_moe_config(40, 24, 12, 6, 10);
  c.seed = 5;
  auto cpu = model::make_classifier(c);
  c.device = "cuda";
  auto gpu = model::make_classifier(c);
  EXPECT_TRUE(gpu->device().is_cuda(), "model on ", gpu->device());
  cpu->eval();  // eval mode: the routing record lists every assignment (gradients flow all the same)
  gpu->eval();
  // Mostly zeros, like MNIST: the CPU model takes its zero-skipping input layer, CUDA the plain GEMM.
  const auto x = torch::randn({50, 40}) * (torch::rand({50, 40}) < 0.2).to(torch::kFloat);
  EXPECT_TRUE(ops::input_linear_skips_zeros(x), "the CPU side must take the zero-skipping path");
  const auto labels = torch::randint(0, 10, {50}, torch::kLong);
  auto loss_of = [&](model::Classifier& m, const torch::Device& d) {
    const auto out = m.forward(x.to(d));
    return std::make_pair(out, torch::cross_entropy_loss(out.logits, labels.to(d)) + 0.1 * out.aux_loss);
  };
  auto [out_cpu, loss_cpu] = loss_of(*cpu, torch::kCPU);
  auto [out_gpu, loss_gpu] = loss_of(*gpu, kCuda);
  expect_equal(out_gpu.routing.expert.cpu(), out_cpu.routing.expert, "routing");
  expect_close(out_gpu.logits.cpu(), out_cpu.logits, 1e-5, 1e-4, "logits");
  expect_close(out_gpu.aux_loss.cpu(), out_cpu.aux_loss, 1e-6, 1e-5, "aux loss");
  loss_cpu.backward();
  loss_gpu.backward();
  const auto sc = cpu->named_parameters(), sg = gpu->named_parameters();
  EXPECT_TRUE(sc.size() == sg.size(), sc.size(), " CPU parameters, ", sg.size(), " CUDA parameters");
  for (const auto& item : sc) {
    std::string key = item.key();
    torch::Tensor grad_cpu = item.value().grad();
    if (key == "input_w_t") {  // the CPU stores the input weight transposed (classifier.cpp)
      key = "input_w";
      grad_cpu = grad_cpu.t();
    }
    expect_close(sg[key].grad().cpu(), grad_cpu, 1e-6, 1e-3, "grad of " + key);
  }
}

MOE_TEST(cuda_training_repeats_and_graph_matches_eager) {
  require_cuda();
  torch::manual_seed(25);
  const auto inputs = torch::rand({2000, 64});
  const auto labels = (inputs.narrow(1, 0, 10).argmax(1)).contiguous();  // a learnable rule
  auto run = [&](bool graph) {
    auto c = moe::testing::small_moe_config(64, 32, 16, 8, 10);
    c.device = "cuda";
    c.seed = 9;
    auto m = model::make_classifier(c);
    model::TrainerState state;
    model::TrainConfig t;
    t.epochs = 3;
    t.batch_size = 64;  // 31 full batches (3 warm-up, 1 capture, replays) and a tail of 16
    t.shuffle_seed = 77;
    t.cuda_graph = graph;
    std::atomic<bool> stop{false};
    const auto result = model::train(*m, state, inputs, labels, t, nullptr, stop);
    std::vector<double> losses;
    for (const auto& e : result.epochs) losses.push_back(e.loss);
    return std::make_pair(losses, m->named_state());
  };
  const auto [graph_a, state_a] = run(true);
  const auto [graph_b, state_b] = run(true);
  const auto [eager, state_e] = run(false);
  EXPECT_TRUE(graph_a.size() == 3 && graph_a[2] < graph_a[0], "training lowers the loss: ", graph_a[0], " -> ",
              graph_a.back());
  for (size_t i = 0; i < graph_a.size(); ++i) {
    EXPECT_TRUE(graph_a[i] == graph_b[i], "epoch ", i + 1, ": seeded runs differ: ", graph_a[i], " vs ", graph_b[i]);
    EXPECT_TRUE(graph_a[i] == eager[i], "epoch ", i + 1, ": graph replay ", graph_a[i], " vs eager ", eager[i]);
  }
  for (size_t i = 0; i < state_a.size(); ++i) {
    expect_equal(state_b[i].second.cpu(), state_a[i].second.cpu(), "repeat: " + state_a[i].first);
    expect_equal(state_e[i].second.cpu(), state_a[i].second.cpu(), "eager vs graph: " + state_a[i].first);
  }
}
