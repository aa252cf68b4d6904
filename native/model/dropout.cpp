#include "dropout.h"

namespace moe::model {

at::Tensor dropout(const at::Tensor& x, double p, at::Generator& gen) {
  if (p == 0) return x;
  const at::Tensor keep = at::empty_like(x).bernoulli_(1.0 - p, gen).div_(1.0 - p);
  return x * keep;
}

}  // namespace moe::model
