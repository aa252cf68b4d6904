// Dropout with the model's own generator: training runs repeat per seed, and never touch the
// process-global generator (which other models of the process share).
#pragma once
#include <ATen/ATen.h>

namespace moe::model {

// x * mask / (1 - p), mask ~ Bernoulli(1 - p) drawn from gen; x itself when p == 0. Differentiable in x.
at::Tensor dropout(const at::Tensor& x, double p, at::Generator& gen);

}  // namespace moe::model
