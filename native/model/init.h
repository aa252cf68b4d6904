// Seeded parameter initialisation with a generator of the model's own (never the process-global one, so
// two models built concurrently stay reproducible). Matches torch.nn.Linear's default: weight and bias
// uniform in +-1/sqrt(fan_in).
#pragma once
#include <ATen/ATen.h>

namespace moe::model {

// A tensor of `shape` filled uniformly in [-1/sqrt(fan_in), 1/sqrt(fan_in)].
at::Tensor linear_uniform(at::IntArrayRef shape, int64_t fan_in, at::Generator& gen);

}  // namespace moe::model
