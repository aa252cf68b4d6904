// CPU expert FFN: per-expert products over the experts' contiguous slices, written into preallocated
// outputs. Experts are independent, so the threads split them (by row count, not expert count, so that
// skewed routing still balances); each thread runs its experts' products single-threaded (row kernels or
// BLAS), which suits these small products better than splitting each one. Offsets are host values (no sync).
#include "expert_ffn.h"

#include <algorithm>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <torch/autograd.h>

#include "../kernels/column_sums.h"
#include "../kernels/ffn_16rows.h"
#include "../kernels/row_gemm.h"
#include "../kernels/row_gemm_nt.h"
#include "../kernels/transpose.h"
#include "checks.h"
#include "row_kernels.h"

namespace moe::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Calls fn(e) for every expert, each exactly once; a thread takes the experts whose first row falls in
// its share of [0, A), so work is split by rows and the assignment of experts to threads is fixed.
template <typename Fn>
void for_each_expert(const int64_t* off, int64_t E, Fn&& fn) {
  const int64_t A = off[E];
  const int64_t tasks = std::min<int64_t>(at::get_num_threads(), E);
  if (tasks <= 1 || A < 64) {
    for (int64_t e = 0; e < E; ++e) fn(e);
    return;
  }
  // Grad and inference mode are thread-local and at::parallel_for does not carry them to its threads.
  const at::ThreadLocalState caller_state;
  at::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    at::ThreadLocalStateGuard same_state(caller_state);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t lo = A * task / tasks, hi = A * (task + 1) / tasks;
      for (int64_t e = 0; e < E; ++e) {
        const bool last = task == tasks - 1;
        if (off[e] >= lo && (off[e] < hi || (last && off[e] == A))) fn(e);
      }
    }
  });
}

// Calls fn(e, lo, hi) for pieces [lo, hi) of expert e's rows that together cover every row once; each
// thread takes an equal share of [0, A) and the pieces of the experts it overlaps. Balanced whatever the
// routing, where for_each_expert keeps an expert whole (its backward writes each expert's gradients once).
template <typename Fn>
void for_row_pieces(const int64_t* off, int64_t E, Fn&& fn) {
  const int64_t A = off[E];
  const int64_t tasks = std::min<int64_t>(at::get_num_threads(), std::max<int64_t>(A / 16, 1));
  const auto pieces_of = [&](int64_t lo, int64_t hi) {
    for (int64_t e = 0; e < E; ++e) {
      const int64_t a = std::max(lo, off[e]), b = std::min(hi, off[e + 1]);
      if (a < b) fn(e, a, b);
    }
  };
  if (tasks <= 1) {
    pieces_of(0, A);
    return;
  }
  const at::ThreadLocalState caller_state;  // inference mode is thread-local (see for_each_expert)
  at::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    at::ThreadLocalStateGuard same_state(caller_state);
    for (int64_t task = t0; task < t1; ++task) pieces_of(A * task / tasks, A * (task + 1) / tasks);
  });
}

// The row-kernel path (uses_row_kernels): every product of an expert runs in the row kernels on raw
// pointers. BLAS runs an expert's few rows slower than these, and slowest where an operand is transposed
// (the forward's x·Wᵀ): the forward runs x·Wᵀ on W as stored (ffn_16rows and row_gemm_nt) or, for experts
// with many rows, transposes W for row_gemm (see kMaxRowsWithoutTranspose); the input gradients use W as
// stored and the weight gradients read dYᵀ by strides.

// out = bias + a·b (a [n,k], b [k,m], bias [m] or undefined, out [n,m]): in kernels::row_gemm for
// contiguous float32 where the CPU has it (no packing: faster than BLAS for an expert's few rows), else BLAS.
void rows_times(at::Tensor& out, const at::Tensor& a, const at::Tensor& b, const at::Tensor& bias = {}) {
  const bool fits = uses_row_kernels({&out, &a, &b, bias.defined() ? &bias : &out}) && a.is_contiguous() &&
                    b.is_contiguous() && out.is_contiguous() && (!bias.defined() || bias.is_contiguous());
  if (!fits) {
    if (bias.defined()) {
      at::addmm_out(out, bias, a, b);
    } else {
      at::mm_out(out, a, b);
    }
    return;
  }
  kernels::row_gemm(a.data_ptr<float>(), a.size(1), a.size(0), b.data_ptr<float>(), b.size(0), b.size(1),
                    bias.defined() ? bias.data_ptr<float>() : nullptr, out.data_ptr<float>(), out.size(1));
}

// d *= (act > 0) over n values: ReLU's derivative from its output (act > 0 exactly where the input was).
template <typename scalar_t>
void relu_backward_inplace(scalar_t* d, const scalar_t* act, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = act[i] > scalar_t(0) ? d[i] : scalar_t(0);
}

// x = max(x, 0) over n elements.
void relu_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// The weights every path reads: w1 [E,F,H], b1 [E,F], w2 [E,O,F], b2 [E,O], contiguous.
struct ExpertWeights {
  at::Tensor w1, b1, w2, b2;
  int64_t E() const { return w1.size(0); }
  int64_t F() const { return w1.size(1); }
  int64_t H() const { return w1.size(2); }
  int64_t O() const { return w2.size(1); }
};

// An expert with at most this many rows runs on W as stored (forward_on_stored_weights); one with more
// transposes W first and runs kernels::row_gemm, which reuses each of Wᵀ's rows across 4 of its rows
// (`npm run bench:kernels` times both ways at 16 and at 32 rows per expert).
constexpr int64_t kMaxRowsWithoutTranspose = 24;

// A last tile of at least this many rows still runs in kernels::ffn_16rows_forward, whose cost is that of
// 16 rows whatever m; fewer rows run in kernels::row_gemm_nt. At 13 rows the tile is still ahead
// (`npm run bench:kernels`: 1.09x at 13 rows per expert).
constexpr int64_t kMinRowsForPartialTile = 13;

// One expert's n rows on W as stored: tiles of 16 rows with the rows as SIMD lanes (no horizontal sums),
// where the sizes allow, and the rows left in row_gemm_nt (a horizontal sum per 16 outputs).
void forward_on_stored_weights(const float* x, int64_t n, const float* w1, const float* b1, const float* w2,
                               const float* b2, int64_t H, int64_t F, int64_t O, float* h, float* y) {
  int64_t r = 0;
  if (kernels::ffn_16rows_applies(H, F, O)) {
    for (; n - r >= kMinRowsForPartialTile; r += 16) {
      kernels::ffn_16rows_forward(x + r * H, H, std::min<int64_t>(16, n - r), w1, b1, w2, b2, H, F, O, h + r * F, F,
                                  y + r * O, O);
    }
  }
  if (r >= n) return;
  kernels::row_gemm_nt(x + r * H, H, n - r, w1, H, F, H, b1, h + r * F, F);
  relu_inplace(h + r * F, (n - r) * F);
  kernels::row_gemm_nt(h + r * F, F, n - r, w2, F, O, F, b2, y + r * O, O);
}

// out and hidden (post-ReLU) for the rows of expert-contiguous `rows`, in the row kernels. Each thread
// transposes the experts with many rows that it runs into its own scratch, kept across calls (fresh pages
// every step would cost more than the transposes) and still in cache for the products that follow.
void forward_rows(const at::Tensor& rows, const int64_t* off, const ExpertWeights& w, at::Tensor& hidden,
                  at::Tensor& out) {
  const int64_t F = w.F(), H = w.H(), O = w.O();
  for_each_expert(off, w.E(), [&](int64_t e) {
    const int64_t n = off[e + 1] - off[e];
    if (n == 0) return;
    const float* x = rows.data_ptr<float>() + off[e] * H;
    const float* w1 = w.w1.data_ptr<float>() + e * F * H;
    const float* w2 = w.w2.data_ptr<float>() + e * O * F;
    const float* b1 = w.b1.data_ptr<float>() + e * F;
    const float* b2 = w.b2.data_ptr<float>() + e * O;
    float* h = hidden.data_ptr<float>() + off[e] * F;
    float* y = out.data_ptr<float>() + off[e] * O;
    if (n <= kMaxRowsWithoutTranspose) return forward_on_stored_weights(x, n, w1, b1, w2, b2, H, F, O, h, y);
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>(H * F + F * O));
    float* w1_t = scratch.data();
    float* w2_t = scratch.data() + H * F;
    kernels::transpose(w1, F, H, w1_t);
    kernels::transpose(w2, O, F, w2_t);
    kernels::row_gemm(x, H, n, w1_t, H, F, b1, h, F);
    relu_inplace(h, n * F);
    kernels::row_gemm(h, F, n, w2_t, F, O, b2, y, O);
  });
}

// The same in ATen ops (BLAS): other dtypes, and CPUs without AVX-512F.
void forward_blas(const at::Tensor& rows, const int64_t* off, const ExpertWeights& w, at::Tensor& hidden,
                  at::Tensor& out) {
  for_each_expert(off, w.E(), [&](int64_t e) {
    const int64_t n = off[e + 1] - off[e];
    if (n == 0) return;
    at::Tensor h = hidden.narrow(0, off[e], n);
    at::addmm_out(h, w.b1[e], rows.narrow(0, off[e], n), w.w1[e].t());
    h.relu_();
    at::Tensor o = out.narrow(0, off[e], n);
    at::addmm_out(o, w.b2[e], h, w.w2[e].t());
  });
}

void backward_rows(const at::Tensor& grad_out, const at::Tensor& rows, const at::Tensor& hidden, const int64_t* off,
                   const ExpertWeights& w, ExpertFfnGrads& g) {
  const int64_t F = w.F(), H = w.H(), O = w.O();
  at::Tensor dh_all = at::empty({rows.size(0), F}, rows.options());
  for_each_expert(off, w.E(), [&](int64_t e) {
    const int64_t n = off[e + 1] - off[e];
    float* gw1 = g.w1.data_ptr<float>() + e * F * H;
    float* gw2 = g.w2.data_ptr<float>() + e * O * F;
    float* gb1 = g.b1.data_ptr<float>() + e * F;
    float* gb2 = g.b2.data_ptr<float>() + e * O;
    const float* dy = grad_out.data_ptr<float>() + off[e] * O;  // [n,O]
    const float* a = hidden.data_ptr<float>() + off[e] * F;     // [n,F]
    const float* x = rows.data_ptr<float>() + off[e] * H;       // [n,H]
    float* dh = dh_all.data_ptr<float>() + off[e] * F;
    // dW2 = dYᵀ·A: dYᵀ is read by strides (row stride 1, column stride O); likewise dW1 = dHᵀ·X.
    kernels::row_gemm_strided(dy, 1, O, O, a, n, F, nullptr, gw2, F);
    kernels::column_sums(dy, n, O, O, gb2);
    kernels::row_gemm(dy, O, n, w.w2.data_ptr<float>() + e * O * F, O, F, nullptr, dh, F);
    relu_backward_inplace(dh, a, n * F);
    kernels::row_gemm_strided(dh, 1, F, F, x, n, H, nullptr, gw1, H);
    kernels::column_sums(dh, n, F, F, gb1);
    kernels::row_gemm(dh, F, n, w.w1.data_ptr<float>() + e * F * H, F, H, nullptr,
                      g.rows.data_ptr<float>() + off[e] * H, H);
  });
}

void backward_blas(const at::Tensor& grad_out, const at::Tensor& rows, const at::Tensor& hidden, const int64_t* off,
                   const ExpertWeights& w, ExpertFfnGrads& g) {
  at::Tensor dh_all = at::empty({rows.size(0), w.F()}, rows.options());
  for_each_expert(off, w.E(), [&](int64_t e) {
    const int64_t n = off[e + 1] - off[e];
    at::Tensor gw1 = g.w1[e], gw2 = g.w2[e], gb1 = g.b1[e], gb2 = g.b2[e];
    if (n == 0) {
      for (at::Tensor* t : {&gw1, &gw2, &gb1, &gb2}) t->zero_();
      return;
    }
    const at::Tensor dy = grad_out.narrow(0, off[e], n);  // [n,O]
    const at::Tensor a = hidden.narrow(0, off[e], n);     // [n,F]
    const at::Tensor x = rows.narrow(0, off[e], n);       // [n,H]
    at::mm_out(gw2, dy.t(), a);
    at::sum_out(gb2, dy, 0);
    at::Tensor dh = dh_all.narrow(0, off[e], n);
    at::mm_out(dh, dy, w.w2[e]);
    AT_DISPATCH_FLOATING_TYPES(dh.scalar_type(), "relu_backward", [&] {
      relu_backward_inplace(dh.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), dh.numel());
    });
    at::mm_out(gw1, dh.t(), x);
    at::sum_out(gb1, dh, 0);
    at::Tensor gx = g.rows.narrow(0, off[e], n);
    at::mm_out(gx, dh, w.w1[e]);
  });
}

struct ExpertFfnFunction : public torch::autograd::Function<ExpertFfnFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& rows, const at::Tensor& offsets,
                            const at::Tensor& w1_in, const at::Tensor& b1, const at::Tensor& w2_in,
                            const at::Tensor& b2) {
    const at::Tensor w1 = w1_in.contiguous(), w2 = w2_in.contiguous();
    auto out = at::empty({rows.size(0), w2.size(1)}, rows.options());
    auto hidden = at::empty({rows.size(0), w1.size(1)}, rows.options());  // post-ReLU activations, kept for backward
    expert_ffn_forward_cpu(rows, offsets.data_ptr<int64_t>(), w1, b1, w2, b2, hidden, out);
    ctx->save_for_backward({rows, offsets, w1, w2, hidden});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &rows = saved[0], &offsets = saved[1], &w1 = saved[2], &w2 = saved[3], &hidden = saved[4];
    const ExpertFfnGrads g =
        expert_ffn_backward_cpu(grads[0].contiguous(), rows, hidden, offsets.data_ptr<int64_t>(), w1, w2);
    return {g.rows, at::Tensor(), g.w1, g.b1, g.w2, g.b2};
  }
};

}  // namespace

void check_expert_inputs(const at::Tensor& rows, const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2,
                         const at::Tensor& b2, const char* rows_name) {
  check_float(rows, rows_name);
  check_dim(rows, 2, rows_name);
  check_dim(w1, 3, "w1");
  check_dim(w2, 3, "w2");
  const int64_t E = w1.size(0), F = w1.size(1), H = w1.size(2);
  MOE_CHECK_VALUE(rows.size(1) == H, rows_name, " must have ", H, " columns (w1's input size), got ", rows.size(1));
  const int64_t O = w2.size(1);
  MOE_CHECK_VALUE(w2.size(0) == E && w2.size(2) == F, "w2 must have shape [", E, ", outputs, ", F, "], got ",
                  w2.sizes());
  MOE_CHECK_VALUE(b1.sizes() == at::IntArrayRef({E, F}), "b1 must have shape [", E, ", ", F, "], got ",
                  b1.sizes());
  MOE_CHECK_VALUE(b2.sizes() == at::IntArrayRef({E, O}), "b2 must have shape [", E, ", ", O, "], got ",
                  b2.sizes());
}

namespace {

// offsets [E+1] int64 on the CPU, from 0 to the row count, non-decreasing: returned contiguous.
at::Tensor checked_offsets(const at::Tensor& offsets, int64_t E, int64_t rows) {
  MOE_CHECK_TYPE(offsets.scalar_type() == at::kLong && offsets.device().is_cpu(),
                 "offsets must be an int64 CPU tensor");
  MOE_CHECK_VALUE(offsets.dim() == 1 && offsets.size(0) == E + 1, "offsets must have shape [", E + 1,
                  "], got ", offsets.sizes());
  const at::Tensor off = offsets.contiguous();
  const int64_t* o = off.data_ptr<int64_t>();
  MOE_CHECK_VALUE(o[0] == 0 && o[E] == rows, "offsets must start at 0 and end at rows.size(0)=", rows, ", got ",
                  o[0], " and ", o[E]);
  for (int64_t e = 0; e < E; ++e) {
    MOE_CHECK_VALUE(o[e] <= o[e + 1], "offsets must be non-decreasing, got ", o[e], " then ", o[e + 1]);
  }
  return off;
}

}  // namespace

void expert_ffn_forward_cpu(const at::Tensor& rows, const int64_t* offsets, const at::Tensor& w1, const at::Tensor& b1,
                            const at::Tensor& w2, const at::Tensor& b2, at::Tensor& hidden, at::Tensor& out) {
  const ExpertWeights w{w1.contiguous(), b1.contiguous(), w2.contiguous(), b2.contiguous()};
  if (uses_row_kernels({&rows, &w.w1, &w.b1, &w.w2, &w.b2})) {
    forward_rows(rows, offsets, w, hidden, out);
  } else {
    forward_blas(rows, offsets, w, hidden, out);
  }
}

ExpertFfnGrads expert_ffn_backward_cpu(const at::Tensor& grad_out, const at::Tensor& rows, const at::Tensor& hidden,
                                       const int64_t* offsets, const at::Tensor& w1, const at::Tensor& w2) {
  const ExpertWeights w{w1, {}, w2, {}};
  const int64_t E = w.E();
  // Every row and every expert's slice is overwritten below (the BLAS path zero-fills empty experts; in
  // the row kernels an empty expert's products have k = 0 and write zeros).
  ExpertFfnGrads g{at::empty_like(rows), at::empty_like(w1), at::empty({E, w.F()}, w1.options()),
                   at::empty_like(w2), at::empty({E, w.O()}, w2.options())};
  if (uses_row_kernels({&grad_out, &rows, &hidden, &w.w1, &w.w2})) {
    backward_rows(grad_out, rows, hidden, offsets, w, g);
  } else {
    backward_blas(grad_out, rows, hidden, offsets, w, g);
  }
  return g;
}

at::Tensor expert_ffn(const at::Tensor& rows, const at::Tensor& offsets, const at::Tensor& w1,
                      const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2) {
  check_expert_inputs(rows, w1, b1, w2, b2);
  const int64_t E = w1.size(0);
  return ExpertFfnFunction::apply(rows.contiguous(), checked_offsets(offsets, E, rows.size(0)), w1, b1, w2, b2);
}

at::Tensor expert_ffn_inference(const at::Tensor& rows_in, const at::Tensor& offsets, const at::Tensor& w1_t,
                                const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2) {
  TORCH_CHECK(!at::GradMode::is_enabled(), "expert_ffn_inference has no backward: call it without autograd");
  check_dim(w1_t, 3, "w1_t");
  check_expert_inputs(rows_in, w1_t.transpose(1, 2), b1, w2, b2);
  const int64_t E = w1_t.size(0), F = w1_t.size(2), O = w2.size(1);
  const at::Tensor off = checked_offsets(offsets, E, rows_in.size(0));
  const at::Tensor rows = rows_in.contiguous();
  at::Tensor out = at::empty({rows.size(0), O}, rows.options());
  at::Tensor hidden = at::empty({rows.size(0), F}, rows.options());
  const int64_t* o = off.data_ptr<int64_t>();
  const at::Tensor b1c = b1.contiguous(), w2c = w2.contiguous(), b2c = b2.contiguous();
  if (uses_row_kernels({&rows, &w1_t, &b1c, &w2c, &b2c}) && w1_t.is_contiguous()) {
    // Raw pointers all the way: a service's small batches would otherwise pay more in per-expert ATen
    // calls than in the products. The second layers are the composed [O,F] ones (O small): row_gemm_nt.
    const int64_t H = rows.size(1);
    for_row_pieces(o, E, [&](int64_t e, int64_t lo, int64_t hi) {
      const int64_t n = hi - lo;
      float* h = hidden.data_ptr<float>() + lo * F;
      kernels::row_gemm(rows.data_ptr<float>() + lo * H, H, n, w1_t.data_ptr<float>() + e * H * F, H, F,
                        b1c.data_ptr<float>() + e * F, h, F);
      relu_inplace(h, n * F);
      kernels::row_gemm_nt(h, F, n, w2c.data_ptr<float>() + e * O * F, F, O, F, b2c.data_ptr<float>() + e * O,
                           out.data_ptr<float>() + lo * O, O);
    });
    return out;
  }
  for_row_pieces(o, E, [&](int64_t e, int64_t lo, int64_t hi) {
    const int64_t n = hi - lo;
    at::Tensor h = hidden.narrow(0, lo, n);
    rows_times(h, rows.narrow(0, lo, n), w1_t[e], b1[e]);
    h.relu_();
    at::Tensor y = out.narrow(0, lo, n);
    at::addmm_out(y, b2[e], h, w2[e].t());
  });
  return out;
}

at::Tensor expert_ffn_padded(const at::Tensor& rows, int64_t capacity, const at::Tensor& w1, const at::Tensor& b1,
                             const at::Tensor& w2, const at::Tensor& b2) {
  check_expert_inputs(rows, w1, b1, w2, b2);
  const int64_t E = w1.size(0), H = w1.size(2);
  MOE_CHECK_VALUE(capacity >= 1 && rows.size(0) == E * capacity, "rows must have num_experts*capacity=", E * capacity,
                  " rows, got ", rows.size(0));
  const at::Tensor x = rows.view({E, capacity, H});
  const at::Tensor hidden = at::baddbmm(b1.unsqueeze(1), x, w1.transpose(1, 2)).relu_();
  return at::baddbmm(b2.unsqueeze(1), hidden, w2.transpose(1, 2)).view({E * capacity, w2.size(1)});
}

const char* expert_path_name(bool cuda) { return cuda ? "padded-bmm" : "grouped-loop"; }

}  // namespace moe::ops
