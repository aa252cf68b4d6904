#include "init.h"

#include <cmath>

namespace moe::model {

at::Tensor linear_uniform(at::IntArrayRef shape, int64_t fan_in, at::Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return at::empty(shape, at::kFloat).uniform_(-bound, bound, gen);
}

}  // namespace moe::model
