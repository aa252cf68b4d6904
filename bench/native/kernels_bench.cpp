// Times the hand-written CPU kernels against what they replace, on one thread, at the reference model's
// shapes (8 experts of 256 -> 128 -> 256): the experts' forward products at 16 rows each (batch 64,
// top-2) and at 250 rows (batch 1,000), kernels::row_gemm against ATen's addmm with the weights as stored
// (the BLAS path); the training forward's x·Wᵀ on the weights as stored (row_gemm_nt) against
// transposing them for row_gemm, at 16 and 32 rows; the weight gradients, row_gemm_strided against
// mm(dYᵀ, H); the weight transpose against ATen's strided copy; the router's gate and the output layer
// (ops::narrow_linear) against addmm with autograd; and one Adam step at the MoE's and dense256's sizes
// against torch.optim.Adam's ops; and the reference MoE's inference on its prepared weights, kept across
// calls, against forward() and against preparing them per call; predict's listing of each input's experts
// against the ATen sorts it replaced. Each comparison alternates the two sides for `rounds` rounds
// and prints one JSON line: the median microseconds of each side and the median of the per-round ratios.
// Run through `node bench/kernels.mjs`, which writes bench/results/.
#include <ATen/ATen.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "../../native/kernels/ffn_16rows.h"
#include "../../native/kernels/row_gemm.h"
#include "../../native/kernels/row_gemm_nt.h"
#include "../../native/kernels/transpose.h"
#include "../../native/kernels/adam.h"
#include "../../native/model/classifier.h"
#include "../../native/model/metrics.h"
#include "../../native/ops/narrow_linear.h"

namespace {

constexpr int64_t kExperts = 8, kHidden = 256, kExpertHidden = 128;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Microseconds per call of fn, over enough calls to last about 20 ms.
double time_us(const std::function<void()>& fn) {
  fn();
  int reps = 1;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) fn();
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (us > 20000 || reps >= (1 << 20)) return us / reps;
    reps *= 2;
  }
}

void compare(const std::string& what, const std::string& against, const std::function<void()>& ours,
             const std::function<void()>& theirs, int rounds) {
  std::vector<double> a, b, ratio;
  for (int r = 0; r < rounds; ++r) {
    a.push_back(time_us(ours));
    b.push_back(time_us(theirs));
    ratio.push_back(b.back() / a.back());
  }
  std::printf("{\"what\": \"%s\", \"against\": \"%s\", \"ours_us\": %.2f, \"theirs_us\": %.2f, \"speedup\": %.3f}\n",
              what.c_str(), against.c_str(), median(a), median(b), median(ratio));
  std::fflush(stdout);
}

// The reference model's experts over `rows` rows each: weights as stored, inputs, hidden and outputs,
// and their two forward products in either row kernel.
struct Experts {
  explicit Experts(int64_t rows)
      : rows(rows),
        w1(at::randn({kExperts, kExpertHidden, kHidden})),
        b1(at::randn({kExperts, kExpertHidden})),
        w2(at::randn({kExperts, kHidden, kExpertHidden})),
        b2(at::randn({kExperts, kHidden})),
        x(at::randn({kExperts * rows, kHidden})),
        h(at::empty({kExperts * rows, kExpertHidden})),
        y(at::empty({kExperts * rows, kHidden})) {}

  // Expert e's products in row_gemm, on its weights transposed ([H,F] and [F,H]).
  void row_gemm_forward(int64_t e, const float* w1_t, const float* w2_t) {
    float* he = h.data_ptr<float>() + e * rows * kExpertHidden;
    moe::kernels::row_gemm(x.data_ptr<float>() + e * rows * kHidden, kHidden, rows, w1_t, kHidden, kExpertHidden,
                           b1.data_ptr<float>() + e * kExpertHidden, he, kExpertHidden);
    moe::kernels::row_gemm(he, kExpertHidden, rows, w2_t, kExpertHidden, kHidden, b2.data_ptr<float>() + e * kHidden,
                           y.data_ptr<float>() + e * rows * kHidden, kHidden);
  }

  // Expert e's products in row_gemm_nt, on its weights as stored.
  void row_gemm_nt_forward(int64_t e) {
    float* he = h.data_ptr<float>() + e * rows * kExpertHidden;
    moe::kernels::row_gemm_nt(x.data_ptr<float>() + e * rows * kHidden, kHidden, rows, w1_of(e), kHidden,
                              kExpertHidden, kHidden, b1.data_ptr<float>() + e * kExpertHidden, he, kExpertHidden);
    moe::kernels::row_gemm_nt(he, kExpertHidden, rows, w2_of(e), kExpertHidden, kHidden, kExpertHidden,
                              b2.data_ptr<float>() + e * kHidden, y.data_ptr<float>() + e * rows * kHidden, kHidden);
  }

  // Expert e's FFN in ffn_16rows, a tile of 16 rows (the rows as SIMD lanes), on its weights as stored.
  void tile_forward(int64_t e) {
    moe::kernels::ffn_16rows_forward(x.data_ptr<float>() + e * rows * kHidden, kHidden, rows, w1_of(e),
                                     b1.data_ptr<float>() + e * kExpertHidden, w2_of(e),
                                     b2.data_ptr<float>() + e * kHidden, kHidden, kExpertHidden, kHidden,
                                     h.data_ptr<float>() + e * rows * kExpertHidden, kExpertHidden,
                                     y.data_ptr<float>() + e * rows * kHidden, kHidden);
  }

  const float* w1_of(int64_t e) const { return w1.data_ptr<float>() + e * kExpertHidden * kHidden; }
  const float* w2_of(int64_t e) const { return w2.data_ptr<float>() + e * kHidden * kExpertHidden; }

  int64_t rows;
  at::Tensor w1, b1, w2, b2, x, h, y;
};

// Both layers of every expert over `rows` rows each: ours on weights transposed beforehand, ATen's addmm on
// the weights as stored.
void expert_forward(int64_t rows, int rounds) {
  Experts ex(rows);
  const auto w1_t = ex.w1.transpose(1, 2).contiguous(), w2_t = ex.w2.transpose(1, 2).contiguous();
  const auto ours = [&] {
    for (int64_t e = 0; e < kExperts; ++e) {
      ex.row_gemm_forward(e, w1_t.data_ptr<float>() + e * kHidden * kExpertHidden,
                          w2_t.data_ptr<float>() + e * kExpertHidden * kHidden);
    }
  };
  const auto theirs = [&] {
    for (int64_t e = 0; e < kExperts; ++e) {
      at::Tensor he = ex.h.narrow(0, e * rows, rows), ye = ex.y.narrow(0, e * rows, rows);
      at::addmm_out(he, ex.b1[e], ex.x.narrow(0, e * rows, rows), ex.w1[e].t());
      at::addmm_out(ye, ex.b2[e], he, ex.w2[e].t());
    }
  };
  compare("expert forward, " + std::to_string(rows) + " rows per expert (weights transposed beforehand)", "addmm on W as stored",
          ours, theirs, rounds);
}

// The training forward's two ways to x·Wᵀ for every expert over `rows` rows each: row_gemm_nt on the
// weights as stored against transposing each expert's weights and running row_gemm (what the forward
// does for experts of more than kMaxRowsWithoutTranspose rows, ops/expert_ffn.cpp).
void expert_forward_without_transpose(int64_t rows, int rounds) {
  Experts ex(rows);
  std::vector<float> w1_t(kHidden * kExpertHidden), w2_t(kExpertHidden * kHidden);
  const auto ours = [&] {
    for (int64_t e = 0; e < kExperts; ++e) ex.row_gemm_nt_forward(e);
  };
  const auto theirs = [&] {
    for (int64_t e = 0; e < kExperts; ++e) {
      moe::kernels::transpose(ex.w1_of(e), kExpertHidden, kHidden, w1_t.data());
      moe::kernels::transpose(ex.w2_of(e), kHidden, kExpertHidden, w2_t.data());
      ex.row_gemm_forward(e, w1_t.data(), w2_t.data());
    }
  };
  compare("expert forward on W as stored (row_gemm_nt), " + std::to_string(rows) + " rows per expert",
          "transposes + row_gemm", ours, theirs, rounds);
}

// The training forward on W as stored for experts of 16 rows (13 to 16): one tile in ffn_16rows against
// row_gemm_nt (which runs experts of fewer rows and the rows past whole tiles).
void expert_forward_rows_as_lanes(int64_t rows, int rounds) {
  Experts ex(rows);
  const auto ours = [&] {
    for (int64_t e = 0; e < kExperts; ++e) ex.tile_forward(e);
  };
  const auto theirs = [&] {
    for (int64_t e = 0; e < kExperts; ++e) ex.row_gemm_nt_forward(e);
  };
  compare("expert forward on W as stored, rows as SIMD lanes (ffn_16rows), " + std::to_string(rows) +
              " rows per expert", "row_gemm_nt", ours, theirs, rounds);
}

// dW2 = dYᵀ·H and dW1 = dHᵀ·X for every expert over `rows` rows each.
void expert_weight_gradients(int64_t rows, int rounds) {
  const auto dy = at::randn({kExperts * rows, kHidden}), a = at::randn({kExperts * rows, kExpertHidden});
  const auto dh = at::randn({kExperts * rows, kExpertHidden}), x = at::randn({kExperts * rows, kHidden});
  auto gw1 = at::empty({kExperts, kExpertHidden, kHidden}), gw2 = at::empty({kExperts, kHidden, kExpertHidden});
  const auto ours = [&] {
    for (int64_t e = 0; e < kExperts; ++e) {
      moe::kernels::row_gemm_strided(dy.data_ptr<float>() + e * rows * kHidden, 1, kHidden, kHidden,
                                     a.data_ptr<float>() + e * rows * kExpertHidden, rows, kExpertHidden, nullptr,
                                     gw2.data_ptr<float>() + e * kHidden * kExpertHidden, kExpertHidden);
      moe::kernels::row_gemm_strided(dh.data_ptr<float>() + e * rows * kExpertHidden, 1, kExpertHidden,
                                     kExpertHidden, x.data_ptr<float>() + e * rows * kHidden, rows, kHidden,
                                     nullptr, gw1.data_ptr<float>() + e * kExpertHidden * kHidden, kHidden);
    }
  };
  const auto theirs = [&] {
    for (int64_t e = 0; e < kExperts; ++e) {
      at::Tensor g2 = gw2[e], g1 = gw1[e];
      at::mm_out(g2, dy.narrow(0, e * rows, rows).t(), a.narrow(0, e * rows, rows));
      at::mm_out(g1, dh.narrow(0, e * rows, rows).t(), x.narrow(0, e * rows, rows));
    }
  };
  compare("expert weight gradients, " + std::to_string(rows) + " rows per expert", "mm(dYᵀ, H)", ours, theirs, rounds);
}

// All experts' first-layer weights [E,F,H] -> [E,H,F].
void weight_transpose(int rounds) {
  const auto w = at::randn({kExperts, kExpertHidden, kHidden});
  auto out = at::empty({kExperts, kHidden, kExpertHidden});
  const auto ours = [&] {
    for (int64_t e = 0; e < kExperts; ++e) {
      moe::kernels::transpose(w.data_ptr<float>() + e * kExpertHidden * kHidden, kExpertHidden, kHidden,
                              out.data_ptr<float>() + e * kHidden * kExpertHidden);
    }
  };
  const auto theirs = [&] { out.copy_(w.transpose(1, 2)); };
  compare("expert weight transpose", "ATen's strided copy", ours, theirs, rounds);
}

// The router's gate (64 inputs of 256 values -> 8 logits) and the output layer (-> 10 classes), forward
// and backward: ops::narrow_linear (row kernels) against addmm and its autograd backward.
void narrow_layer(int64_t outputs, const std::string& name, int rounds) {
  const int64_t rows = 64;
  auto x = torch::randn({rows, kHidden}).requires_grad_(), w = torch::randn({outputs, kHidden}).requires_grad_();
  auto b = torch::randn({outputs}).requires_grad_();
  const auto g = torch::randn({rows, outputs});
  const auto pass = [&](bool ours) {
    for (torch::Tensor* t : {&x, &w, &b}) t->mutable_grad().reset();
    (ours ? moe::ops::narrow_linear(x, w, b) : torch::addmm(b, x, w.t())).backward(g);
  };
  compare(name + ", 64 rows, forward and backward (narrow_linear)", "addmm and its autograd backward",
          [&] { pass(true); }, [&] { pass(false); }, rounds);
}

// One Adam step over `n` values, our one-pass loop (kernels::adam_step_cpu) against the ops that
// torch.optim.Adam runs on one tensor; n: the reference MoE's and dense256's parameter counts.
void adam_step(int64_t n, const std::string& name, int rounds) {
  auto p = torch::randn({n}), g = torch::randn({n}), m = torch::zeros({n}), v = torch::zeros({n});
  const moe::kernels::AdamHyper h;
  const double lr = 1e-3, bc1 = 1 - std::pow(h.beta1, 10), bc2 = 1 - std::pow(h.beta2, 10);
  const auto ours = [&] {
    moe::kernels::adam_step_cpu(p.data_ptr<float>(), g.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), n,
                                lr, 10, h);
  };
  const auto theirs = [&] {
    m.mul_(h.beta1).add_(g, 1 - h.beta1);
    v.mul_(h.beta2).addcmul_(g, g, 1 - h.beta2);
    const auto denom = (v.sqrt() / std::sqrt(bc2)).add_(h.eps);
    p.addcdiv_(m, denom, -lr / bc1);
  };
  compare("Adam step over " + name, "torch.optim.Adam's ops on one tensor", ours, theirs, rounds);
}

// The reference MoE's inference over `rows` inputs (mostly zeros, like pixels), routing included: on the
// prepared weights kept across calls (Classifier::inference) against forward() on the weights as stored,
// and against preparing them in every call (weights_changed() before each: what inference did before it
// kept them, from 84 rows on).
void model_inference(int64_t rows, int rounds) {
  const auto model = moe::model::make_classifier(moe::model::ModelConfig{});
  model->eval();
  c10::InferenceMode inference;
  const auto x = at::rand({rows, 784}) * (at::rand({rows, 784}) < 0.2);
  const std::string what = "MoE inference, " + std::to_string(rows) + (rows == 1 ? " input" : " inputs") +
                           ", prepared weights kept";
  const auto kept = [&] { model->inference()(x); };
  compare(what, "forward() on the weights as stored", kept, [&] { model->forward(x); }, rounds);
  compare(what, "prepared in every call", kept, [&] {
    model->weights_changed();
    model->inference()(x);
  }, rounds);
}

// predict with routing over `rows` inputs in one batch: model::predict (each input's experts listed by
// host loops) against the same forward pass followed by the ATen sorts, gathers and concatenations that
// listed them before (kept here as the reference).
void predict_with_routing(int64_t rows, int rounds) {
  const auto model = moe::model::make_classifier(moe::model::ModelConfig{});
  model->eval();
  const auto x = at::rand({rows, 784}) * (at::rand({rows, 784}) < 0.2);
  const auto aten_lists = [&] {
    c10::InferenceMode inference;
    const moe::model::ForwardResult out = model->inference()(x);
    const at::Tensor probs = at::softmax(out.logits, 1).cpu();
    const moe::model::RoutingRecord& r = out.routing;
    const at::Tensor by_weight = std::get<1>(r.weight.sort(/*stable=*/true, 0, /*descending=*/true));
    const at::Tensor order =
        by_weight.index_select(0, std::get<1>(r.token.index_select(0, by_weight).sort(/*stable=*/true, 0, false)));
    const at::Tensor token = at::cat({r.token.index_select(0, order)}).cpu();
    const at::Tensor experts = at::cat({r.expert.index_select(0, order)}).cpu().to(at::kInt);
    const at::Tensor weights = at::cat({r.weight.index_select(0, order)}).cpu().to(at::kFloat);
    at::Tensor offsets = at::zeros({rows + 1}, at::kInt);
    offsets.narrow(0, 1, rows).copy_(at::bincount(token, {}, rows).cumsum(0));
  };
  compare("predict with routing, " + std::to_string(rows) + (rows == 1 ? " input" : " inputs"),
          "the same forward, experts listed by ATen sorts and gathers",
          [&] { moe::model::predict(*model, x, rows, true); }, aten_lists, rounds);
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
  if (!moe::kernels::row_gemm_available()) {
    std::printf("{\"skipped\": \"this CPU has no AVX-512F: the row kernels do not run here\"}\n");
    return 0;
  }
  at::set_num_threads(1);
  at::manual_seed(0);
  expert_forward(16, rounds);
  expert_forward(250, rounds);
  expert_forward_without_transpose(16, rounds);
  expert_forward_without_transpose(32, rounds);
  expert_forward_rows_as_lanes(16, rounds);
  expert_forward_rows_as_lanes(13, rounds);
  expert_weight_gradients(16, rounds);
  weight_transpose(rounds);
  narrow_layer(8, "router gate (8 experts)", rounds);
  narrow_layer(10, "output layer (10 classes)", rounds);
  adam_step(732946, "732,946 values (the reference MoE)", rounds);
  adam_step(335114, "335,114 values (dense256)", rounds);
  for (const int64_t rows : {1, 21, 64, 128, 1000}) model_inference(rows, rounds);
  for (const int64_t rows : {1, 21, 64}) predict_with_routing(rows, rounds);
  return 0;
}
