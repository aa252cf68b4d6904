#include "cuda_support.h"

#include "checks.h"

#if TORCH_MOE_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace moe::ops {

#if TORCH_MOE_WITH_CUDA
bool cuda_kernels_built() { return true; }
#else
bool cuda_kernels_built() { return false; }
#endif

void require_cuda_kernels() {
  MOE_CHECK_VALUE(cuda_kernels_built(), "torch-moe was built against a libtorch without CUDA, so it has no CUDA "
                  "kernels; rebuild it against a CUDA libtorch (see README, 'CUDA') or use device 'cpu'");
}

void* current_cuda_stream() {
#if TORCH_MOE_WITH_CUDA
  return c10::cuda::getCurrentCUDAStream().stream();
#else
  require_cuda_kernels();
  return nullptr;
#endif
}

void check_device_supported(const at::Tensor& t, const char* name) {
  if (t.device().is_cpu()) return;
  MOE_CHECK_VALUE(t.device().is_cuda(), name, " must be a CPU or CUDA tensor, got ", t.device());
  require_cuda_kernels();
}

}  // namespace moe::ops
