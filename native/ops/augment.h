// Training-time augmentation of a batch (CPU): random translation of square images (kernels/translate.h).
#pragma once
#include <torch/torch.h>

namespace moe::ops {

// The side of the square images of `input_size` values, or 0 when input_size is not a perfect square.
int64_t square_side(int64_t input_size);

// x [B, side*side] float, shifts [B, 2] int64 (dy, dx) with |dy|, |dx| < side -> the moved images (a new tensor).
at::Tensor translate_images(const at::Tensor& x, const at::Tensor& shifts, int64_t side);

// shifts [n, 2] drawn uniformly from [-max_shift, max_shift] with gen (one per input and axis).
at::Tensor random_shifts(int64_t n, int64_t max_shift, at::Generator& gen);

}  // namespace moe::ops
