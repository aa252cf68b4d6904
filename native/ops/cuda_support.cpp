#include "cuda_support.h"

#include "checks.h"

#if TORCH_MOE_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace moe::ops {

#if TORCH_MOE_WITH_CUDA
bool cuda_kernels_built() { return true; }
void* current_cuda_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }
#else
bool cuda_kernels_built() { return false; }
void* current_cuda_stream() {
  MOE_CHECK_VALUE(false, "torch-moe was built against a libtorch without CUDA, so it has no CUDA kernels; "
                         "rebuild it against a CUDA libtorch (see README, 'CUDA') or use device 'cpu'");
  return nullptr;
}
#endif

void check_device_supported(const at::Tensor& t, const char* name) {
  if (t.device().is_cpu()) return;
  MOE_CHECK_VALUE(t.device().is_cuda(), name, " must be a CPU or CUDA tensor, got ", t.device());
  MOE_CHECK_VALUE(cuda_kernels_built(), name, " is a CUDA tensor, but torch-moe was built against a libtorch "
                  "without CUDA; rebuild against a CUDA libtorch or keep the model on device 'cpu'");
}

}  // namespace moe::ops
