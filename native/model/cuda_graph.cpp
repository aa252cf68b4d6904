#include "cuda_graph.h"

#include "../ops/cuda_support.h"

#if TORCH_MOE_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace moe::model {

#if TORCH_MOE_WITH_CUDA

struct CapturedStep::Impl {
  at::cuda::CUDAGraph graph;
};

CapturedStep::CapturedStep() : impl_(std::make_unique<Impl>()) {}
CapturedStep::~CapturedStep() = default;

void CapturedStep::capture(const std::function<void()>& step) {
  impl_->graph.capture_begin();
  try {
    step();
  } catch (...) {
    try {
      impl_->graph.capture_end();  // leave the stream out of capture mode before reporting
    } catch (...) {
    }
    throw;
  }
  impl_->graph.capture_end();
}

void CapturedStep::replay() { impl_->graph.replay(); }

struct SideStreamScope::Impl {
  c10::cuda::CUDAStream previous;
  c10::cuda::CUDAStream side;
};

SideStreamScope::SideStreamScope()
    : impl_(std::make_unique<Impl>(Impl{c10::cuda::getCurrentCUDAStream(), c10::cuda::getStreamFromPool()})) {
  impl_->previous.synchronize();
  c10::cuda::setCurrentCUDAStream(impl_->side);
}

SideStreamScope::~SideStreamScope() {
  impl_->side.synchronize();
  c10::cuda::setCurrentCUDAStream(impl_->previous);
}

at::Generator make_cuda_generator(uint64_t seed) {
  at::Generator gen = at::cuda::detail::createCUDAGenerator(0);
  gen.set_current_seed(seed);
  return gen;
}

#else

// A CPU-only build never makes a CUDA model (make_classifier refuses), so these only guard direct callers.
struct CapturedStep::Impl {};
CapturedStep::CapturedStep() { ops::require_cuda_kernels(); }
CapturedStep::~CapturedStep() = default;
void CapturedStep::capture(const std::function<void()>&) { ops::require_cuda_kernels(); }
void CapturedStep::replay() { ops::require_cuda_kernels(); }
struct SideStreamScope::Impl {};
SideStreamScope::SideStreamScope() { ops::require_cuda_kernels(); }
SideStreamScope::~SideStreamScope() = default;
at::Generator make_cuda_generator(uint64_t) {
  ops::require_cuda_kernels();
  return {};
}

#endif

}  // namespace moe::model
