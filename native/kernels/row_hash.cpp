#include "row_hash.h"

#include <cstring>
#include <numeric>
#include <utility>
#include <vector>

namespace moe::kernels {
namespace {

// FNV-1a over the values' bit patterns, then splitmix64 to spread the bits.
uint64_t hash_row(const float* row, int64_t D) {
  uint64_t h = 1469598103934665603ULL;
  for (int64_t d = 0; d < D; ++d) {
    const float v = row[d] == 0.0f ? 0.0f : row[d];  // -0 == +0
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    h = (h ^ bits) * 1099511628211ULL;
  }
  return h;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

void row_hash_experts(const float* x, int64_t T, int64_t D, int64_t E, int64_t k, int64_t* idx) {
  std::vector<int64_t> experts(E);
  for (int64_t t = 0; t < T; ++t) {
    uint64_t state = hash_row(x + t * D, D);
    // The first k steps of a Fisher-Yates shuffle of [0,E) driven by the row's hash.
    std::iota(experts.begin(), experts.end(), 0);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t pick = j + static_cast<int64_t>(splitmix64(state) % static_cast<uint64_t>(E - j));
      std::swap(experts[j], experts[pick]);
      idx[t * k + j] = experts[j];
    }
  }
}

}  // namespace moe::kernels
