// Argument checks for the op layer. Every message names the argument and what is accepted, because the
// ops are reachable without lib/'s validation (tests, future callers). TYPE -> JS TypeError,
// VALUE/INDEX -> JS RangeError (see binding/errors.cpp).
#pragma once
#include <ATen/ATen.h>

#define MOE_CHECK_TYPE(cond, ...) TORCH_CHECK_TYPE(cond, __VA_ARGS__)
#define MOE_CHECK_VALUE(cond, ...) TORCH_CHECK_VALUE(cond, __VA_ARGS__)
#define MOE_CHECK_INDEX(cond, ...) TORCH_CHECK_INDEX(cond, __VA_ARGS__)

namespace moe::ops {

inline void check_float(const at::Tensor& t, const char* name) {
  MOE_CHECK_TYPE(t.defined(), name, " must be a defined tensor");
  MOE_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
                 " must be float32 or float64, got ", t.scalar_type());
}

inline void check_dim(const at::Tensor& t, int64_t dim, const char* name) {
  MOE_CHECK_VALUE(t.dim() == dim, name, " must have ", dim, " dimensions, got shape ", t.sizes());
}

}  // namespace moe::ops
