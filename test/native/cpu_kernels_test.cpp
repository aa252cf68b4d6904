// The CPU fast paths against their references: the SIMD Adam against the reference step, the threaded
// float combine/permute against the double reference kernels, the finite scan against ATen's isfinite,
// and the zero-skipping input layer against PyTorch's own addmm (forward and gradients).
#include "../../native/kernels/adam.h"
#include "../../native/kernels/combine.h"
#include "../../native/kernels/finite.h"
#include "../../native/kernels/permute.h"
#include "../../native/kernels/ffn_16rows.h"
#include "../../native/kernels/row_gemm.h"
#include "../../native/kernels/row_gemm_nt.h"
#include "../../native/kernels/sparse_rows.h"
#include "../../native/kernels/transpose.h"
#include "../../native/model/classifier.h"
#include "../../native/ops/dispatch.h"
#include "../../native/ops/fused_adam.h"
#include "../../native/ops/augment.h"
#include "../../native/ops/input_linear.h"
#include "../../native/ops/narrow_linear.h"
#include "testing.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

using namespace moe;
using moe::testing::expect_close;
using moe::testing::random_choices;

namespace {

// Sets the intra-op thread count for a scope and restores it, also when the scope throws.
class ScopedThreads {
 public:
  explicit ScopedThreads(int n) : before_(at::get_num_threads()) { at::set_num_threads(n); }
  ~ScopedThreads() { at::set_num_threads(before_); }

 private:
  int before_;
};

// Runs fn at 2 intra-op threads, so that the threaded paths split their work.
template <typename Fn>
void at_two_threads(Fn&& fn) {
  ScopedThreads two(2);
  fn();
}

}  // namespace

MOE_TEST(simd_adam_matches_reference_step_and_per_parameter_gradients_match_flat) {
  torch::manual_seed(41);
  const int64_t n = 100003;  // not a multiple of any vector width or thread chunk
  const auto p0 = torch::randn({n}), g = torch::randn({n}), m0 = torch::randn({n}) * 0.1,
             v0 = torch::rand({n}) * 0.01;
  auto p_ref = p0.clone(), m_ref = m0.clone(), v_ref = v0.clone();
  for (int64_t step = 1; step <= 3; ++step) {
    kernels::adam_step_ref(p_ref.data_ptr<float>(), g.data_ptr<float>(), m_ref.data_ptr<float>(),
                           v_ref.data_ptr<float>(), n, 1e-3, step, kernels::AdamHyper{});
  }
  at_two_threads([&] {
    auto p = p0.clone(), m = m0.clone(), v = v0.clone();
    const auto lr = torch::full({1}, 1e-3f), st = torch::zeros({1}, torch::kLong);
    // Flat gradient for two steps, then the same gradient as three per-parameter pieces.
    for (int i = 0; i < 2; ++i) ops::fused_adam_step(p, g, m, v, lr, st, kernels::AdamHyper{});
    ops::fused_adam_step(p, {g.narrow(0, 0, 7), g.narrow(0, 7, 50000), g.narrow(0, 50007, n - 50007)}, m, v, lr, st,
                         kernels::AdamHyper{});
    expect_close(p, p_ref, 1e-7, 1e-6, "parameters after 3 steps");
    expect_close(m, m_ref, 1e-7, 1e-6, "first moment");
    expect_close(v, v_ref, 1e-9, 1e-6, "second moment");
  });
  auto p = p0.clone(), m = m0.clone(), v = v0.clone();  // the loop CPUs without AVX-512 run
  for (int64_t step = 1; step <= 3; ++step) {
    kernels::adam_step_cpu_portable(p.data_ptr<float>(), g.data_ptr<float>(), m.data_ptr<float>(),
                                    v.data_ptr<float>(), n, 1e-3, step, kernels::AdamHyper{});
  }
  expect_close(p, p_ref, 1e-7, 1e-6, "parameters after 3 portable steps");
  expect_close(v, v_ref, 1e-9, 1e-6, "second moment after 3 portable steps");
  bool threw = false;
  try {
    auto p = p0.clone(), m = m0.clone(), v = v0.clone();
    const std::vector<torch::Tensor> too_short = {g.narrow(0, 0, 10)};
    ops::fused_adam_step(p, too_short, m, v, torch::full({1}, 1e-3f), torch::zeros({1}, torch::kLong),
                         kernels::AdamHyper{});
  } catch (const c10::ValueError&) {
    threw = true;
  }
  EXPECT_TRUE(threw, "gradients shorter than the parameters must raise ValueError");
}

// The CPU step replaces Adam's division by a refined reciprocal (AVX-512): where v overflows to infinity
// that estimate meets inf * 0, so the edges are checked value by value against the reference, in a
// full vector and in a masked tail (n = 19): a gradient whose square overflows leaves p as the division
// does, infinite and NaN gradients give NaN as it does, zero gradients and zero moments give p back, and
// a NaN second moment gives NaN.
MOE_TEST(simd_adam_matches_reference_at_overflow_infinity_nan_and_zero) {
  const float big = 1e30f, inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // 3e38: m stays finite near FLT_MAX while v overflows, where a capped denominator would still move p
  const std::vector<float> edge = {big, -big, inf, -inf, nan, 0.0f, 1e-30f, -3.0f, 3e38f};
  for (const int64_t n : {int64_t{16}, int64_t{19}}) {
    std::vector<float> g(n), p(n), m(n, 0.0f), v(n, 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      g[i] = edge[i % edge.size()];
      p[i] = 0.5f + 0.01f * static_cast<float>(i);
    }
    g[n - 1] = 0.5f;
    v[n - 1] = nan;  // a NaN second moment with a finite first one: the division gives NaN, so must this
    std::vector<float> p_ref = p, m_ref = m, v_ref = v, p_port = p, m_port = m, v_port = v;
    const kernels::AdamHyper hyper;
    for (int64_t step = 1; step <= 2; ++step) {
      kernels::adam_step_cpu(p.data(), g.data(), m.data(), v.data(), n, 1e-3, step, hyper);
      kernels::adam_step_cpu_portable(p_port.data(), g.data(), m_port.data(), v_port.data(), n, 1e-3, step, hyper);
      kernels::adam_step_ref(p_ref.data(), g.data(), m_ref.data(), v_ref.data(), n, 1e-3, step, hyper);
    }
    for (int64_t i = 0; i < n; ++i) {
      const std::pair<const char*, float> results[] = {{"adam_step_cpu", p[i]}, {"adam_step_cpu_portable", p_port[i]}};
      for (const auto& [name, got] : results) {
        const bool both_nan = std::isnan(got) && std::isnan(p_ref[i]);
        EXPECT_TRUE(both_nan || std::fabs(got - p_ref[i]) <= 1e-6f * std::fabs(p_ref[i]), name, ", n=", n,
                    ", gradient ", g[i], ": p ", got, ", reference ", p_ref[i]);
      }
    }
  }
}

MOE_TEST(threaded_float_combine_and_permute_match_double_reference) {
  torch::manual_seed(42);
  const int64_t T = 600, E = 8, k = 2, H = 70;  // several token chunks per thread; H: 16-wide partial sums and a tail
  const auto idx = random_choices(T, E, k);
  const auto plan = ops::make_dispatch_plan(idx, E);
  const auto x = torch::randn({T, H}).requires_grad_();
  const auto rows_in = torch::randn({T * k, H}).requires_grad_();
  const auto w = torch::rand({T, k}).requires_grad_();
  const auto gy = torch::randn({T, H}), grows = torch::randn({T * k, H});
  at_two_threads([&] {
    ops::permute_tokens(x, plan).backward(grows);
    const auto y = ops::combine_tokens(rows_in, w, plan);
    y.backward(gy);
    const auto a2r = plan.assignment_to_row;
    auto d = [](const torch::Tensor& t) { return t.detach().to(torch::kDouble).contiguous(); };
    auto y_ref = torch::empty({T, H}, torch::kDouble), gx_ref = torch::empty({T, H}, torch::kDouble);
    auto grows_ref = torch::empty({T * k, H}, torch::kDouble), gw_ref = torch::empty({T, k}, torch::kDouble);
    kernels::combine_forward_ref<double>(d(rows_in).data_ptr<double>(), d(w).data_ptr<double>(),
                                         a2r.data_ptr<int64_t>(), T, k, H, y_ref.data_ptr<double>());
    kernels::combine_backward_ref<double>(d(rows_in).data_ptr<double>(), d(w).data_ptr<double>(),
                                          a2r.data_ptr<int64_t>(), d(gy).data_ptr<double>(), T, k, H,
                                          grows_ref.data_ptr<double>(), gw_ref.data_ptr<double>());
    kernels::permute_backward_ref<double>(d(grows).data_ptr<double>(), a2r.data_ptr<int64_t>(), T, k, H,
                                          gx_ref.data_ptr<double>());
    expect_close(y, y_ref, 1e-5, 1e-5, "combine forward");
    expect_close(rows_in.grad(), grows_ref, 1e-6, 1e-6, "combine backward rows");
    expect_close(w.grad(), gw_ref, 1e-4, 1e-5, "combine backward weights");
    expect_close(x.grad(), gx_ref, 1e-6, 1e-6, "permute backward");
  });
}

MOE_TEST(finite_scan_finds_the_first_nan_or_infinity) {
  torch::manual_seed(43);
  auto x = torch::randn({20000});
  EXPECT_TRUE(kernels::first_non_finite(x.data_ptr<float>(), x.numel()) == -1, "all finite");
  const float specials[] = {std::nanf(""), INFINITY, -INFINITY};
  for (float s : specials) {
    for (int64_t at : {int64_t{0}, int64_t{4095}, int64_t{4096}, int64_t{19999}}) {
      auto y = x.clone();
      y[at] = s;
      y[19999] = at == 19999 ? s : 1.0f;  // a later special value must not be reported first
      if (at != 19999) y[at + 1] = s;
      const int64_t ref = at::logical_not(at::isfinite(y)).nonzero().min().item<int64_t>();
      const int64_t got = kernels::first_non_finite(y.data_ptr<float>(), y.numel());
      EXPECT_TRUE(got == ref && got == at, "first non-finite at ", got, ", isfinite says ", ref);
    }
  }
}

MOE_TEST(csr_build_matches_a_naive_scan) {
  // Rows of 150 values (18 blocks of 8 and a tail of 6; with AVX-512, 9 of 16 and a tail of 6), ~15% nonzero, with -0.0 entries (zeros), an
  // all-zero row and a full row; filled in two row ranges, as two threads would.
  torch::manual_seed(46);
  const int64_t M = 9, K = 150;
  auto x = torch::rand({M, K}) * (torch::rand({M, K}) < 0.15).to(torch::kFloat);
  x.masked_fill_(torch::rand({M, K}) < 0.1, -0.0);
  x[2].zero_();
  x[5] = torch::rand({K}) + 0.5;
  const float* px = x.data_ptr<float>();
  std::vector<int64_t> want_start{0};
  std::vector<int32_t> want_col;
  std::vector<float> want_val;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) {
      if (px[m * K + k] != 0.0f) {
        want_col.push_back(static_cast<int32_t>(k));
        want_val.push_back(px[m * K + k]);
      }
    }
    want_start.push_back(static_cast<int64_t>(want_col.size()));
  }
  std::vector<int64_t> row_start{0};
  for (int64_t m = 0; m < M; ++m) row_start.push_back(row_start.back() + kernels::count_nonzeros(px + m * K, K));
  EXPECT_TRUE(row_start == want_start, "row starts");
  EXPECT_TRUE(kernels::count_nonzeros(px, M * K) == row_start.back(), "count over the whole matrix");
  std::vector<int32_t> col(row_start.back(), -1);
  std::vector<float> val(row_start.back(), -1.0f);
  kernels::csr_fill_rows(px, 4, M, K, row_start.data(), col.data(), val.data());
  kernels::csr_fill_rows(px, 0, 4, K, row_start.data(), col.data(), val.data());
  EXPECT_TRUE(col == want_col, "columns");
  EXPECT_TRUE(val == want_val, "values");
}

MOE_TEST(translated_images_match_a_padded_crop) {
  // out[i][j] = x[i - dy][j - dx], zeros shifted in; the reference pads by the largest shift and crops.
  torch::manual_seed(47);
  const int64_t B = 40, side = 6, t = side - 1;
  const auto x = torch::rand({B, side * side}) + 0.5;  // no zeros, so a misplaced zero shows
  auto shifts = torch::randint(-t, t + 1, {B, 2}, torch::kLong);
  shifts[0] = torch::tensor({0, 0});
  shifts[1] = torch::tensor({t, -t});
  shifts[2] = torch::tensor({-t, t});
  const auto got = ops::translate_images(x, shifts, side);
  const auto padded = torch::constant_pad_nd(x.view({B, side, side}), {t, t, t, t});
  for (int64_t b = 0; b < B; ++b) {
    const int64_t dy = shifts[b][0].item<int64_t>(), dx = shifts[b][1].item<int64_t>();
    const auto want = padded[b].narrow(0, t - dy, side).narrow(1, t - dx, side).reshape({side * side});
    EXPECT_TRUE(torch::equal(got[b], want), "image " + std::to_string(b) + " moved by (" + std::to_string(dy) +
                                                ", " + std::to_string(dx) + ")");
  }
  EXPECT_TRUE(torch::equal(got[0], x[0]), "a zero shift is a copy");
  EXPECT_TRUE(ops::square_side(784) == 28 && ops::square_side(100) == 10 && ops::square_side(30) == 0, "square sides");
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto drawn = ops::random_shifts(5000, 2, gen);
  EXPECT_TRUE(drawn.min().item<int64_t>() == -2 && drawn.max().item<int64_t>() == 2, "shifts span [-2, 2]");
  bool refused = false;
  try {
    ops::translate_images(x, torch::full({B, 2}, side, torch::kLong), side);
  } catch (const c10::ValueError&) {
    refused = true;
  }
  EXPECT_TRUE(refused, "a shift of a whole side is refused");
  const auto none = torch::empty({0, side * side});
  EXPECT_TRUE(ops::translate_images(none, torch::empty({0, 2}, torch::kLong), side).size(0) == 0, "an empty batch");
}

MOE_TEST(zero_skipping_input_layer_matches_addmm_forward_and_gradients) {
  torch::manual_seed(44);
  // N: a 256-column block (AVX-512 CPUs; four 64-column blocks elsewhere), a 64-column block and a tail
  const int64_t M = 70, K = 150, N = 330;
  auto x = torch::rand({M, K}) * (torch::rand({M, K}) < 0.15).to(torch::kFloat);
  x[3].zero_();  // an all-zero row
  const char* switch_value = std::getenv("TORCH_MOE_SKIP_ZEROS");
  const bool switched_off = switch_value && std::string(switch_value) == "0";
  EXPECT_TRUE(ops::input_linear_skips_zeros(x) == !switched_off,
              "a 15%-dense batch takes the zero-skipping path unless TORCH_MOE_SKIP_ZEROS=0");
  EXPECT_TRUE(!ops::input_linear_skips_zeros(torch::rand({M, K}) + 0.1), "a dense batch takes the GEMM");
  EXPECT_TRUE(!ops::input_linear_skips_zeros(x.clone().requires_grad_()), "x needing a gradient takes the GEMM");
  const auto w0 = torch::randn({N, K}) * 0.1, b0 = torch::randn({N});
  const auto gy = torch::randn({M, N});
  at_two_threads([&] {
    auto w_t = w0.t().contiguous().requires_grad_(), b = b0.clone().requires_grad_();
    auto w_ref = w0.clone().requires_grad_(), b_ref = b0.clone().requires_grad_();
    const auto y = ops::input_linear(x, w_t, b);
    const auto y_ref = torch::addmm(b_ref, x, w_ref.t());
    expect_close(y, y_ref, 1e-5, 1e-5, "forward");
    y.backward(gy);
    y_ref.backward(gy);
    EXPECT_TRUE(w_t.grad().is_contiguous() && w_t.grad().sizes() == w_t.sizes(), "gradient in w_t's layout");
    expect_close(w_t.grad().t(), w_ref.grad(), 1e-5, 1e-5, "weight gradient");
    expect_close(b.grad(), b_ref.grad(), 1e-5, 1e-5, "bias gradient");
  });
}

MOE_TEST(threaded_expert_split_keeps_inference_mode_and_matches_one_thread) {
  // The experts are split across threads by rows; the pool threads must run in the caller's mode
  // (InferenceMode here, as evaluate uses), and the result must not depend on the split.
  auto c = moe::testing::small_moe_config(30, 24, 12, 8, 5);
  c.seed = 3;
  const auto m = model::make_classifier(c);
  torch::manual_seed(45);
  const auto x = torch::randn({300, 30});  // 600 routed rows: several per thread
  torch::Tensor one_thread;
  {
    ScopedThreads one(1);
    c10::InferenceMode inference;
    one_thread = m->forward(x).logits.clone();
  }
  at_two_threads([&] {
    c10::InferenceMode inference;
    const auto two_threads = m->forward(x).logits;
    expect_close(two_threads, one_thread, 1e-6, 1e-5, "logits at 2 threads");
  });
}

MOE_TEST(row_gemm_matches_addmm) {
  if (!kernels::row_gemm_available()) throw moe::testing::Skipped("this CPU has no AVX-512F (the experts use BLAS)");
  torch::manual_seed(48);
  // Rows: one block of 4 and a tail, two blocks, a lone row; columns: full 64-column strips, a masked
  // 16-wide tail (130 = 2 strips + 2), fewer than 16; a and out with row strides wider than their rows.
  for (const int64_t m : {5, 8, 1}) {
    for (const int64_t n : {128, 130, 10}) {
      const int64_t k = 37;
      const auto a_wide = torch::randn({m, k + 3}), b = torch::randn({k, n}), bias = torch::randn({n});
      const auto a = a_wide.narrow(1, 0, k);
      auto out_wide = torch::full({m, n + 5}, 7.0f);
      kernels::row_gemm(a.data_ptr<float>(), k + 3, m, b.data_ptr<float>(), k, n, bias.data_ptr<float>(),
                        out_wide.data_ptr<float>(), n + 5);
      const std::string what = c10::str("m ", m, ", n ", n);
      expect_close(out_wide.narrow(1, 0, n), torch::addmm(bias, a, b), 1e-4, 1e-5, what);
      moe::testing::expect_equal(out_wide.narrow(1, n, 5), torch::full({m, 5}, 7.0f), what + ": beyond the row untouched");
      kernels::row_gemm(a.data_ptr<float>(), k + 3, m, b.data_ptr<float>(), k, n, nullptr,
                        out_wide.data_ptr<float>(), n + 5);
      expect_close(out_wide.narrow(1, 0, n), torch::mm(a, b), 1e-4, 1e-5, what + ", no bias");
    }
  }
}

MOE_TEST(row_gemm_with_a_transposed_matches_mm) {
  if (!kernels::row_gemm_available()) throw moe::testing::Skipped("this CPU has no AVX-512F (the experts use BLAS)");
  torch::manual_seed(49);
  // a(r, k) read by strides from a [k, m] matrix with padded rows (row stride 1, column stride m + 3): the
  // experts' weight gradients dYᵀ·H. m = 130 rows (blocks of 4 and a tail), k = 5 (an expert's few rows)
  // and 0 (an empty expert: all zeros).
  for (const int64_t k : {5, 0}) {
    const int64_t m = 130, n = 70;
    const auto stored = torch::randn({k, m + 3}), b = torch::randn({k, n});
    auto out = torch::full({m, n}, 7.0f);
    kernels::row_gemm_strided(stored.data_ptr<float>(), 1, m + 3, m, b.data_ptr<float>(), k, n, nullptr,
                              out.data_ptr<float>(), n);
    expect_close(out, torch::mm(stored.narrow(1, 0, m).t(), b), 1e-4, 1e-5, c10::str("k ", k));
  }
}

MOE_TEST(row_gemm_nt_matches_addmm) {
  if (!kernels::row_gemm_available()) throw moe::testing::Skipped("this CPU has no AVX-512F (the experts use BLAS)");
  torch::manual_seed(51);
  // Rows of a: a block of 4 and a tail of 3 (7), of 2 (6), past one 16-row chunk with a tail of 1 (37), a
  // lone row; rows of b: blocks of 4 and a tail (130: the last rows' blocks of 16 and 8 end in a tail of
  // 2, those of 5 in none), fewer than 4 (every block a single row of b); k: whole vectors (256), a masked last vector (37), less than one (5). Every
  // operand with a row stride wider than its row.
  for (const int64_t m : {7, 6, 37, 1}) {
    for (const int64_t n : {130, 3}) {
      for (const int64_t k : {256, 37, 5}) {
        const auto a_wide = torch::randn({m, k + 3}), b_wide = torch::randn({n, k + 2}), bias = torch::randn({n});
        const auto a = a_wide.narrow(1, 0, k), b = b_wide.narrow(1, 0, k);
        auto out_wide = torch::full({m, n + 5}, 7.0f);
        kernels::row_gemm_nt(a.data_ptr<float>(), k + 3, m, b.data_ptr<float>(), k + 2, n, k, bias.data_ptr<float>(),
                             out_wide.data_ptr<float>(), n + 5);
        const std::string what = c10::str("m ", m, ", n ", n, ", k ", k);
        expect_close(out_wide.narrow(1, 0, n), torch::addmm(bias, a, b.t()), 1e-4, 1e-4, what);
        moe::testing::expect_equal(out_wide.narrow(1, n, 5), torch::full({m, 5}, 7.0f), what + ": beyond the row untouched");
        kernels::row_gemm_nt(a.data_ptr<float>(), k + 3, m, b.data_ptr<float>(), k + 2, n, k, nullptr,
                             out_wide.data_ptr<float>(), n + 5);
        expect_close(out_wide.narrow(1, 0, n), torch::mm(a, b.t()), 1e-4, 1e-4, what + ", no bias");
      }
    }
  }
}

MOE_TEST(ffn_16rows_matches_aten) {
  if (!kernels::ffn_16rows_applies(16, 16, 16)) throw moe::testing::Skipped("this CPU has no AVX-512F");
  torch::manual_seed(53);
  // A whole tile (16 rows), a partial one (13) and one row; every operand with a row stride wider than its
  // row, and rows past m (beyond x's last row nothing is read, beyond h's and y's nothing written).
  const int64_t H = 48, F = 32, O = 64;
  EXPECT_TRUE(!kernels::ffn_16rows_applies(H + 1, F, O), "sizes off multiples of 16 are not taken");
  const auto w1 = torch::randn({F, H}), b1 = torch::randn({F}), w2 = torch::randn({O, F}), b2 = torch::randn({O});
  for (const int64_t m : {16, 13, 1}) {
    const auto x_wide = torch::randn({m, H + 3});
    const auto x = x_wide.narrow(1, 0, H);
    auto h_wide = torch::full({17, F + 5}, 7.0f), y_wide = torch::full({17, O + 2}, 7.0f);
    kernels::ffn_16rows_forward(x.data_ptr<float>(), H + 3, m, w1.data_ptr<float>(), b1.data_ptr<float>(),
                                w2.data_ptr<float>(), b2.data_ptr<float>(), H, F, O, h_wide.data_ptr<float>(), F + 5,
                                y_wide.data_ptr<float>(), O + 2);
    const auto h = torch::relu(torch::addmm(b1, x, w1.t()));
    const std::string what = c10::str("m ", m);
    expect_close(h_wide.narrow(0, 0, m).narrow(1, 0, F), h, 1e-4, 1e-5, what + ": h");
    expect_close(y_wide.narrow(0, 0, m).narrow(1, 0, O), torch::addmm(b2, h, w2.t()), 1e-4, 1e-5, what + ": y");
    moe::testing::expect_equal(h_wide.narrow(1, F, 5), torch::full({17, 5}, 7.0f), what + ": h's padding columns untouched");
    moe::testing::expect_equal(h_wide.narrow(0, m, 17 - m), torch::full({17 - m, F + 5}, 7.0f),
                               what + ": h past row m untouched");
    moe::testing::expect_equal(y_wide.narrow(1, O, 2), torch::full({17, 2}, 7.0f), what + ": y's padding columns untouched");
    moe::testing::expect_equal(y_wide.narrow(0, m, 17 - m), torch::full({17 - m, O + 2}, 7.0f),
                               what + ": y past row m untouched");
  }
}

MOE_TEST(narrow_linear_matches_addmm_forward_and_backward) {
  // Mixed dtypes are refused with the reason (on every CPU).
  const auto f32 = torch::randn({2, 4}), f64 = torch::randn({3, 4}, torch::kDouble);
  std::string message;
  try {
    ops::narrow_linear(f32, f64, torch::randn({3}, torch::kDouble));
  } catch (const c10::Error& e) {
    message = e.what();
  }
  EXPECT_TRUE(message.find("one dtype and device") != std::string::npos, "mixed dtypes refused: '", message, "'");
  if (!kernels::row_gemm_available()) throw moe::testing::Skipped("this CPU has no AVX-512F (narrow_linear is addmm)");
  torch::manual_seed(52);
  // The router's and the output layer's shapes (8 and 10 outputs) and a tail of 3; 37 rows (4-row blocks
  // and a tail), 70 inputs (a masked last vector); float32, the row kernels, against addmm and its autograd.
  for (const int64_t O : {8, 10, 3}) {
    const int64_t T = 37, H = 70;
    const auto x = torch::randn({T, H}).requires_grad_(), w = torch::randn({O, H}).requires_grad_();
    const auto b = torch::randn({O}).requires_grad_();
    const auto rx = x.detach().clone().requires_grad_(), rw = w.detach().clone().requires_grad_();
    const auto rb = b.detach().clone().requires_grad_();
    const auto y = ops::narrow_linear(x, w, b), ref = torch::addmm(rb, rx, rw.t());
    const std::string what = c10::str(O, " outputs");
    expect_close(y, ref, 1e-4, 1e-5, what + ": forward");
    const auto g = torch::randn({T, O});
    y.backward(g);
    ref.backward(g);
    expect_close(x.grad(), rx.grad(), 1e-4, 1e-5, what + ": grad x");
    expect_close(w.grad(), rw.grad(), 1e-4, 1e-5, what + ": grad w");
    expect_close(b.grad(), rb.grad(), 1e-4, 1e-5, what + ": grad b");
  }
  // Only what needs a gradient gets one (a frozen input: the gate's input is the hidden layer's output).
  const auto x = torch::randn({5, 16}), w = torch::randn({4, 16}).requires_grad_(), b = torch::randn({4});
  ops::narrow_linear(x, w, b).sum().backward();
  EXPECT_TRUE(w.grad().defined() && !b.grad().defined() && !x.grad().defined(), "gradients only where asked");
  expect_close(w.grad(), x.sum(0).expand({4, 16}), 1e-4, 1e-5, "grad w of a sum");
}

MOE_TEST(transpose_matches_aten) {
  torch::manual_seed(50);
  // 16 x 16 blocks only, blocks with a column edge and a row edge, and smaller than one block.
  for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{128, 256}, {37, 50}, {5, 3}}) {
    const auto src = torch::randn({rows, cols});
    auto dst = torch::empty({cols, rows});
    kernels::transpose(src.data_ptr<float>(), rows, cols, dst.data_ptr<float>());
    moe::testing::expect_equal(dst, src.t().contiguous(), c10::str(rows, " x ", cols));
  }
}
