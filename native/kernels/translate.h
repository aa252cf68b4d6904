// Random translation, the data augmentation of image classifiers (Keras' RandomTranslation with whole
// pixels and zero fill): image b of a batch is moved by shifts[b] = (dy, dx) pixels on its side x side
// grid, zeros shifted in:  out[b][i][j] = x[b][i - dy][j - dx] where that is inside the image, else 0.
// Plain C++ on raw pointers (no torch); the test compares it with a padded crop in PyTorch.
#pragma once
#include <cstdint>

namespace moe::kernels {

// x, out [B, side*side] row-major (out must not alias x); shifts [B, 2] int64 (dy, dx), |dy|, |dx| < side.
void translate_images(const float* x, int64_t B, int64_t side, const int64_t* shifts, float* out);

}  // namespace moe::kernels
