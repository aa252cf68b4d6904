// Hash routing's assignment (Roller et al. 2021, "Hash Layers For Large Sparse Models"): each input goes
// to k distinct experts drawn from a hash of its raw values, so the choice is fixed before training, never
// learns, and is the same for an input wherever it appears. The analogue for a classifier of hashing a
// token's vocabulary id: the identity of an input is its values.
#pragma once
#include <cstdint>

namespace moe::kernels {

// x [T,D] row-major -> idx [T,k] int64: k distinct experts in [0,E) per row. Values equal as floats hash
// equally (-0 as +0). Caller guarantees 1 <= k <= E.
void row_hash_experts(const float* x, int64_t T, int64_t D, int64_t E, int64_t k, int64_t* idx);

}  // namespace moe::kernels
