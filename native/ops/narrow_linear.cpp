#include "narrow_linear.h"

#include <torch/autograd.h>

#include "../kernels/column_sums.h"
#include "../kernels/row_gemm.h"
#include "../kernels/row_gemm_nt.h"
#include "checks.h"
#include "row_kernels.h"

namespace moe::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct NarrowLinearFunction : public torch::autograd::Function<NarrowLinearFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
    const int64_t T = x.size(0), H = x.size(1), O = w.size(0);
    at::Tensor y = at::empty({T, O}, x.options());
    kernels::row_gemm_nt(x.data_ptr<float>(), H, T, w.data_ptr<float>(), H, O, H, b.data_ptr<float>(),
                         y.data_ptr<float>(), O);
    ctx->save_for_backward({x, w});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    const at::Tensor dy = grads[0].contiguous();
    const int64_t T = x.size(0), H = x.size(1), O = w.size(0);
    const float* g = dy.data_ptr<float>();
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {  // dX = dY·W: W as stored is row_gemm's [k, n] operand
      dx = at::empty({T, H}, x.options());
      kernels::row_gemm(g, O, T, w.data_ptr<float>(), O, H, nullptr, dx.data_ptr<float>(), H);
    }
    if (ctx->needs_input_grad(1)) {  // dW = dYᵀ·X: dYᵀ read by strides
      dw = at::empty({O, H}, w.options());
      kernels::row_gemm_strided(g, 1, O, O, x.data_ptr<float>(), T, H, nullptr, dw.data_ptr<float>(), H);
    }
    if (ctx->needs_input_grad(2)) {
      db = at::empty({O}, w.options());
      kernels::column_sums(g, T, O, O, db.data_ptr<float>());
    }
    return {dx, dw, db};
  }
};

}  // namespace

at::Tensor narrow_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  check_dim(x, 2, "x");
  check_dim(w, 2, "w");
  check_dim(b, 1, "b");
  MOE_CHECK_VALUE(w.size(1) == x.size(1) && b.size(0) == w.size(0), "narrow_linear: w must be [outputs, ",
                  x.size(1), "] and b [outputs], got ", w.sizes(), " and ", b.sizes());
  MOE_CHECK_TYPE(w.scalar_type() == x.scalar_type() && b.scalar_type() == x.scalar_type() &&
                     w.device() == x.device() && b.device() == x.device(),
                 "narrow_linear: x, w and b must have one dtype and device, got ", x.scalar_type(), "/",
                 w.scalar_type(), "/", b.scalar_type(), " on ", x.device(), "/", w.device(), "/", b.device());
  if (!uses_row_kernels({&x, &w, &b})) return at::addmm(b, x, w.t());
  return NarrowLinearFunction::apply(x.contiguous(), w.contiguous(), b.contiguous());
}

}  // namespace moe::ops
