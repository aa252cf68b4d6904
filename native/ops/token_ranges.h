// Token-parallel loop for the CPU dispatch kernels (permute, combine): each task gets a contiguous range
// of tokens, about 16k values of work each. at::parallel_for does not carry thread-local state (grad or
// inference mode) to its threads: fn works on raw pointers only.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace moe::ops {

// Calls fn(first_token, count) over [0, T) in ranges, on ATen's intra-op threads.
template <typename Fn>
void for_token_ranges(int64_t T, int64_t H, Fn&& fn) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(H, 1));
  at::parallel_for(0, T, grain, [&](int64_t begin, int64_t end) { fn(begin, end - begin); });
}

}  // namespace moe::ops
