#include "input_linear.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <cstdlib>
#include <string>

#include "../kernels/sparse_rows.h"
#include "checks.h"

namespace moe::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Csr {
  at::Tensor row_start, col, val;  // int64 [R+1], int32 [nnz], float [nnz]
};

// Rows per task for a pass over x: enough values that a task outweighs its scheduling.
int64_t row_grain(int64_t K) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(K, 1)); }

// row_start [M+1] of x's CSR: each row's nonzeros counted (threads split the rows), then prefix-summed.
at::Tensor csr_row_starts(const at::Tensor& x) {
  const int64_t M = x.size(0), K = x.size(1);
  at::Tensor row_start = at::empty({M + 1}, at::kLong);
  int64_t* rs = row_start.data_ptr<int64_t>();
  const float* px = x.data_ptr<float>();
  rs[0] = 0;
  at::parallel_for(0, M, row_grain(K), [&](int64_t r0, int64_t r1) {
    for (int64_t m = r0; m < r1; ++m) rs[m + 1] = kernels::count_nonzeros(px + m * K, K);
  });
  for (int64_t m = 0; m < M; ++m) rs[m + 1] += rs[m];
  return row_start;
}

Csr csr_of(const at::Tensor& x, const at::Tensor& row_start) {
  const int64_t M = x.size(0), K = x.size(1), nnz = row_start.data_ptr<int64_t>()[M];
  Csr c{row_start, at::empty({nnz}, at::kInt), at::empty({nnz}, at::kFloat)};
  at::parallel_for(0, M, row_grain(K), [&](int64_t r0, int64_t r1) {
    kernels::csr_fill_rows(x.data_ptr<float>(), r0, r1, K, c.row_start.data_ptr<int64_t>(), c.col.data_ptr<int32_t>(),
                           c.val.data_ptr<float>());
  });
  return c;
}

// out [R,N] = csr · dense (+ bias), rows split across threads.
void csr_product(const Csr& c, const at::Tensor& dense, const float* bias, at::Tensor& out) {
  const int64_t R = out.size(0), N = out.size(1);
  const int64_t nnz = std::max<int64_t>(c.val.numel(), 1);
  const int64_t grain = std::max<int64_t>(1, R * 4096 / (nnz * std::max<int64_t>(N / 64, 1)));  // ~4k entries
  at::parallel_for(0, R, grain, [&](int64_t r0, int64_t r1) {
    kernels::csr_times_dense(c.row_start.data_ptr<int64_t>(), c.col.data_ptr<int32_t>(), c.val.data_ptr<float>(),
                             r0, r1, dense.data_ptr<float>(), bias, N, out.data_ptr<float>());
  });
}

struct SparseInputLinear : public torch::autograd::Function<SparseInputLinear> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w_t, const at::Tensor& b,
                            const at::Tensor& row_start) {
    const int64_t M = x.size(0), K = x.size(1), N = w_t.size(1);
    const Csr c = csr_of(x, row_start);
    const at::Tensor bias = b.contiguous();
    at::Tensor y = at::empty({M, N}, x.options());
    csr_product(c, w_t, bias.data_ptr<float>(), y);  // w_t [K,N]: each input's weights contiguous
    ctx->save_for_backward({c.row_start, c.col, c.val});
    ctx->saved_data["K"] = K;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const int64_t K = ctx->saved_data["K"].toInt();
    const at::Tensor dy = grads[0].contiguous();  // [M,N]
    const int64_t M = dy.size(0), N = dy.size(1), nnz = saved[2].numel();
    // (dW)ᵀ = xᵀ·dy: the CSR of xᵀ times dy, one row per input feature (rows of absent features are zero).
    Csr t{at::empty({K + 1}, at::kLong), at::empty({nnz}, at::kInt), at::empty({nnz}, at::kFloat)};
    kernels::csr_transpose(saved[0].data_ptr<int64_t>(), saved[1].data_ptr<int32_t>(), saved[2].data_ptr<float>(), M,
                           K, t.row_start.data_ptr<int64_t>(), t.col.data_ptr<int32_t>(), t.val.data_ptr<float>());
    at::Tensor grad_w_t = at::empty({K, N}, dy.options());
    csr_product(t, dy, nullptr, grad_w_t);
    return {at::Tensor(), grad_w_t, dy.sum(0), at::Tensor()};
  }
};

// TORCH_MOE_SKIP_ZEROS=0 turns the zero-skipping path off (the benchmark measures what it gains).
bool skipping_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("TORCH_MOE_SKIP_ZEROS");
    return !(v && std::string(v) == "0");
  }();
  return enabled;
}

// x's CSR row starts when the zero-skipping path applies to x, else an undefined tensor.
at::Tensor row_starts_if_sparse(const at::Tensor& x) {
  if (!skipping_enabled() || !x.device().is_cpu() || x.scalar_type() != at::kFloat || x.requires_grad() || !x.is_contiguous() ||
      x.dim() != 2 || x.numel() == 0) {
    return at::Tensor();
  }
  at::Tensor row_start = csr_row_starts(x);
  const int64_t nnz = row_start.data_ptr<int64_t>()[x.size(0)];
  return static_cast<double>(nnz) <= kSparseMaxDensity * static_cast<double>(x.numel()) ? row_start : at::Tensor();
}

}  // namespace

bool input_linear_skips_zeros(const at::Tensor& x) { return row_starts_if_sparse(x).defined(); }

at::Tensor input_linear(const at::Tensor& x, const at::Tensor& w_t, const at::Tensor& b) {
  check_float(x, "x");
  check_dim(x, 2, "x");
  check_dim(w_t, 2, "w_t");
  MOE_CHECK_VALUE(x.size(1) == w_t.size(0) && b.dim() == 1 && b.size(0) == w_t.size(1), "input_linear needs x [M,",
                  w_t.size(0), "], w_t [K,N], b [N]; got x ", x.sizes(), ", w_t ", w_t.sizes(), ", b ", b.sizes());
  if (w_t.scalar_type() != at::kFloat || !w_t.is_contiguous()) return at::addmm(b, x, w_t);
  const at::Tensor row_start = row_starts_if_sparse(x);
  if (!row_start.defined()) return at::addmm(b, x, w_t);
  return SparseInputLinear::apply(x, w_t, b, row_start);
}

}  // namespace moe::ops
