// The CUDA pieces the trainer needs, behind a torch-only header: a captured-and-replayed training step
// (ATen's CUDAGraph), a side stream for the whole train call (capture cannot use the default stream),
// and a seeded CUDA generator for on-device shuffling. Built over CUDA libtorch when
// TORCH_MOE_WITH_CUDA is set; otherwise every entry point throws a clear error.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>

namespace moe::model {

class CapturedStep {
 public:
  CapturedStep();
  ~CapturedStep();
  // Records `step` (which must not touch the host) into a graph; does not run it.
  void capture(const std::function<void()>& step);
  // Runs the recorded step on the current stream.
  void replay();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Makes a fresh pool stream current on this thread for its lifetime; syncs on entry and exit so that the
// work before and after it is ordered with the caller's stream.
class SideStreamScope {
 public:
  SideStreamScope();
  ~SideStreamScope();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

at::Generator make_cuda_generator(uint64_t seed);

}  // namespace moe::model
