// Chunks of a few thousand values scanned without an early exit (so the loop is SIMD code), and only a
// chunk that holds a non-finite value is searched for its first one.
#include "finite.h"

#include <algorithm>
#include <cstring>

namespace moe::kernels {

namespace {
constexpr uint32_t kExponentMask = 0x7f800000u;  // all exponent bits set: NaN or Infinity
}

int64_t first_non_finite(const float* data, int64_t n) {
  constexpr int64_t kChunk = 4096;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t end = std::min(n, begin + kChunk);
    uint32_t any = 0;
    for (int64_t i = begin; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, data + i, sizeof bits);
      any |= static_cast<uint32_t>((bits & kExponentMask) == kExponentMask);
    }
    if (!any) continue;
    for (int64_t i = begin; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, data + i, sizeof bits);
      if ((bits & kExponentMask) == kExponentMask) return i;
    }
  }
  return -1;
}

}  // namespace moe::kernels
