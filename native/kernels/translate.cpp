#include "translate.h"

#include <algorithm>
#include <cstring>

namespace moe::kernels {

void translate_images(const float* x, int64_t B, int64_t side, const int64_t* shifts, float* out) {
  const int64_t pixels = side * side;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t dy = shifts[2 * b], dx = shifts[2 * b + 1];
    const float* src = x + b * pixels;
    float* dst = out + b * pixels;
    std::fill(dst, dst + pixels, 0.0f);
    // Rows i in [max(0, dy), min(side, side + dy)) come from rows i - dy; within them, columns j in
    // [max(0, dx), min(side, side + dx)) from columns j - dx: one contiguous copy per row.
    const int64_t i0 = std::max<int64_t>(0, dy), i1 = std::min(side, side + dy);
    const int64_t j0 = std::max<int64_t>(0, dx), j1 = std::min(side, side + dx);
    if (j1 <= j0) continue;
    for (int64_t i = i0; i < i1; ++i) {
      std::memcpy(dst + i * side + j0, src + (i - dy) * side + (j0 - dx), sizeof(float) * (j1 - j0));
    }
  }
}

}  // namespace moe::kernels
