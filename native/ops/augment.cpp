#include "augment.h"

#include <cmath>

#include "../kernels/translate.h"
#include "checks.h"

namespace moe::ops {

int64_t square_side(int64_t input_size) {
  const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(input_size))));
  return side > 0 && side * side == input_size ? side : 0;
}

at::Tensor translate_images(const at::Tensor& x, const at::Tensor& shifts, int64_t side) {
  check_float(x, "x");
  check_dim(x, 2, "x");
  MOE_CHECK_VALUE(x.scalar_type() == at::kFloat && x.device().is_cpu(), "translate_images needs float32 CPU images");
  MOE_CHECK_VALUE(side >= 1 && x.size(1) == side * side, "translate_images needs x [B, ", side * side, "], got ",
                  x.sizes());
  MOE_CHECK_VALUE(shifts.scalar_type() == at::kLong && shifts.device().is_cpu() &&
                      shifts.sizes() == at::IntArrayRef({x.size(0), 2}),
                  "shifts must be int64 [", x.size(0), ", 2] on the CPU, got ", shifts.sizes());
  const at::Tensor s = shifts.contiguous();
  const int64_t* d = s.data_ptr<int64_t>();
  for (int64_t i = 0; i < s.numel(); ++i) {
    MOE_CHECK_VALUE(d[i] > -side && d[i] < side, "shifts must be smaller than the side ", side, ", got ", d[i]);
  }
  const at::Tensor in = x.contiguous();
  at::Tensor out = at::empty_like(in);
  kernels::translate_images(in.data_ptr<float>(), in.size(0), side, s.data_ptr<int64_t>(), out.data_ptr<float>());
  return out;
}

at::Tensor random_shifts(int64_t n, int64_t max_shift, at::Generator& gen) {
  return at::randint(-max_shift, max_shift + 1, {n, 2}, gen, at::kLong);
}

}  // namespace moe::ops
