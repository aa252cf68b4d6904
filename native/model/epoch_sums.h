// The sums a training loop keeps over an epoch: cross-entropy, aux and z losses (each weighted by its
// batch's size), correct predictions, dropped assignments and each expert's load. They live in tensors on
// the model's device so that a captured CUDA step can add to them, and are read once per epoch. On the
// CPU a step adds to their memory directly: the eight small ATen ops it would take (the accuracy alone is
// an argmax, a comparison, a sum and an add) cost more than their arithmetic on a 64-input batch.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "classifier.h"

namespace moe::model {

// The sums as the host reads them once per epoch.
struct EpochSums {
  double cross_entropy = 0, aux = 0, z = 0, correct = 0, dropped = 0;
  std::vector<double> load;  // [E] assignments each expert ran (MoE)
};

struct EpochAccumulators {
  at::Tensor cross_entropy, aux, z, correct, dropped, load;

  EpochAccumulators() = default;
  // On the device and with the float options of `like`; load has num_experts entries (0: a dense model).
  EpochAccumulators(const at::Tensor& like, int64_t num_experts);

  void zero();
  // One step's forward, cross-entropy (a scalar) and labels [T], over `size` inputs.
  void add_step(const ForwardResult& out, const at::Tensor& cross_entropy_loss, const at::Tensor& labels, double size);
  // [5 + E] float64 on the host: cross-entropy, aux, z, correct, dropped, then the loads (one device sync).
  // Flat, so that data-parallel ranks can sum it in one all-reduce before unpack().
  at::Tensor read() const;
  // read()'s layout back into named sums.
  static EpochSums unpack(const at::Tensor& flat);
};

}  // namespace moe::model
