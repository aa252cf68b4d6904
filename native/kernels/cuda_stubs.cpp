// Linked instead of the .cu files when libtorch has no CUDA: every CUDA launcher exists but refuses.
// Unreachable in practice (ops/cuda_support refuses CUDA tensors first); it keeps the ops free of #ifs.
#include <stdexcept>

#include "adam.h"
#include "combine.h"
#include "permute.h"
#include "topk_gate.h"

namespace moe::kernels {
namespace {
[[noreturn]] void unavailable() {
  throw std::runtime_error("torch-moe was built without its CUDA kernels (libtorch had no CUDA at build time)");
}
}  // namespace

template <typename scalar_t>
void topk_gate_forward_cuda(const scalar_t*, int64_t, int64_t, int64_t, scalar_t*, int64_t*, scalar_t*, int64_t*,
                            scalar_t*, void*) {
  unavailable();
}
template <typename scalar_t>
void topk_gate_backward_cuda(const scalar_t*, const int64_t*, const scalar_t*, const scalar_t*, const scalar_t*,
                             int64_t, int64_t, int64_t, scalar_t*, void*) {
  unavailable();
}
int64_t dispatch_plan_padded_cuda_workspace(int64_t, int64_t) { unavailable(); }
void dispatch_plan_padded_cuda(const int64_t*, int64_t, int64_t, int64_t, int64_t*, int64_t*, int64_t*, int64_t*,
                               void*) {
  unavailable();
}
template <typename scalar_t>
void permute_forward_cuda(const scalar_t*, const int64_t*, int64_t, int64_t, int64_t, scalar_t*, void*) {
  unavailable();
}
template <typename scalar_t>
void permute_backward_cuda(const scalar_t*, const int64_t*, int64_t, int64_t, int64_t, scalar_t*, void*) {
  unavailable();
}
template <typename scalar_t>
void combine_forward_cuda(const scalar_t*, const scalar_t*, const int64_t*, int64_t, int64_t, int64_t, scalar_t*,
                          void*) {
  unavailable();
}
template <typename scalar_t>
void combine_backward_cuda(const scalar_t*, const scalar_t*, const int64_t*, const int64_t*, const scalar_t*, int64_t,
                           int64_t, int64_t, int64_t, scalar_t*, scalar_t*, void*) {
  unavailable();
}
void adam_step_cuda(float*, const float*, float*, float*, int64_t, const float*, const int64_t*, const AdamHyper&,
                    void*) {
  unavailable();
}

#define MOE_STUB_INSTANTIATE(T)                                                                                    \
  template void topk_gate_forward_cuda<T>(const T*, int64_t, int64_t, int64_t, T*, int64_t*, T*, int64_t*, T*,      \
                                          void*);                                                                   \
  template void topk_gate_backward_cuda<T>(const T*, const int64_t*, const T*, const T*, const T*, int64_t, int64_t, \
                                           int64_t, T*, void*);                                                     \
  template void permute_forward_cuda<T>(const T*, const int64_t*, int64_t, int64_t, int64_t, T*, void*);            \
  template void permute_backward_cuda<T>(const T*, const int64_t*, int64_t, int64_t, int64_t, T*, void*);           \
  template void combine_forward_cuda<T>(const T*, const T*, const int64_t*, int64_t, int64_t, int64_t, T*, void*);  \
  template void combine_backward_cuda<T>(const T*, const T*, const int64_t*, const int64_t*, const T*, int64_t,     \
                                         int64_t, int64_t, int64_t, T*, T*, void*);
MOE_STUB_INSTANTIATE(float)
MOE_STUB_INSTANTIATE(double)

}  // namespace moe::kernels
