// When an op may hand its products to the hand-written row kernels (kernels/row_gemm, row_gemm_nt):
// every operand float32 on the CPU, and a CPU with AVX-512F. Elsewhere the ops use ATen (BLAS, cuBLAS).
#pragma once
#include <ATen/ATen.h>

#include <initializer_list>

#include "../kernels/row_gemm.h"

namespace moe::ops {

inline bool uses_row_kernels(std::initializer_list<const at::Tensor*> operands) {
  for (const at::Tensor* t : operands) {
    if (t->scalar_type() != at::kFloat || !t->device().is_cpu()) return false;
  }
  return kernels::row_gemm_available();
}

}  // namespace moe::ops
