#include "cuda_graph.h"

#include <c10/util/Exception.h>

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

namespace {
[[noreturn]] void no_cuda() {
  TORCH_CHECK_VALUE(false, "torch-moe was built without CUDA support (libtorch had no CUDA at build time)");
  throw;  // unreachable
}
}  // namespace

struct CapturedStep::Impl {};
CapturedStep::CapturedStep() { no_cuda(); }
CapturedStep::~CapturedStep() = default;
void CapturedStep::capture(const std::function<void()>&) { no_cuda(); }
void CapturedStep::replay() { no_cuda(); }
struct SideStreamScope::Impl {};
SideStreamScope::SideStreamScope() { no_cuda(); }
SideStreamScope::~SideStreamScope() = default;
at::Generator make_cuda_generator(uint64_t) { no_cuda(); }

#endif

}  // namespace moe::model
