// CUDA path of dispatch: the capacity-layout plan as a deterministic counting sort in three small kernels
// (no host copy of any count, so the step stays capturable in a CUDA graph), and the row gathers.
#include "cuda_check.cuh"
#include "permute.h"

namespace moe::kernels {
namespace {

constexpr int kChunk = 256;  // assignments per block in the plan kernels (= threads per block)

int64_t num_chunks(int64_t A) { return (A + kChunk - 1) / kChunk; }

// chunk_counts[c*E + e] = assignments of chunk c that chose expert e (integer shared atomics: exact).
__global__ void chunk_histogram_kernel(const int64_t* __restrict__ ids, int64_t A, int64_t E,
                                       int64_t* __restrict__ chunk_counts) {
  extern __shared__ int hist[];
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) hist[e] = 0;
  __syncthreads();
  const int64_t a = blockIdx.x * static_cast<int64_t>(kChunk) + threadIdx.x;
  if (a < A) atomicAdd(&hist[ids[a]], 1);
  __syncthreads();
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) chunk_counts[blockIdx.x * E + e] = hist[e];
}

// One thread per expert walks the chunks: chunk_base = exclusive prefix over chunks, counts = the total.
__global__ void chunk_scan_kernel(const int64_t* __restrict__ chunk_counts, int64_t chunks, int64_t E,
                                  int64_t* __restrict__ chunk_base, int64_t* __restrict__ counts) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= E) return;
  int64_t running = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    chunk_base[c * E + e] = running;
    running += chunk_counts[c * E + e];
  }
  counts[e] = running;
}

// Stable rank inside the chunk (earlier assignments with the same expert), then the row in the layout.
__global__ void place_kernel(const int64_t* __restrict__ ids, int64_t A, int64_t E, int64_t capacity,
                             const int64_t* __restrict__ chunk_base, int64_t* __restrict__ assignment_to_row,
                             int64_t* __restrict__ row_to_assignment) {
  __shared__ int64_t chunk_ids[kChunk];
  const int64_t a = blockIdx.x * static_cast<int64_t>(kChunk) + threadIdx.x;
  chunk_ids[threadIdx.x] = a < A ? ids[a] : -1;
  __syncthreads();
  if (a >= A) return;
  const int64_t e = chunk_ids[threadIdx.x];
  int64_t rank = 0;
  for (int j = 0; j < static_cast<int>(threadIdx.x); ++j) rank += chunk_ids[j] == e;
  const int64_t row = e * capacity + chunk_base[blockIdx.x * E + e] + rank;
  assignment_to_row[a] = row;
  row_to_assignment[row] = a;
}

template <typename scalar_t>
__global__ void permute_forward_kernel(const scalar_t* __restrict__ x, const int64_t* __restrict__ r2a,
                                       int64_t R, int64_t k, int64_t H, scalar_t* __restrict__ rows) {
  const int64_t r = blockIdx.x;
  const int64_t a = r2a[r];
  for (int64_t h = threadIdx.x; h < H; h += blockDim.x) {
    rows[r * H + h] = a < 0 ? scalar_t(0) : x[(a / k) * H + h];
  }
}

template <typename scalar_t>
__global__ void permute_backward_kernel(const scalar_t* __restrict__ grad_rows, const int64_t* __restrict__ a2r,
                                        int64_t k, int64_t H, scalar_t* __restrict__ grad_x) {
  const int64_t t = blockIdx.x;
  for (int64_t h = threadIdx.x; h < H; h += blockDim.x) {
    scalar_t acc = 0;
    for (int64_t j = 0; j < k; ++j) acc += grad_rows[a2r[t * k + j] * H + h];
    grad_x[t * H + h] = acc;
  }
}

}  // namespace

int64_t dispatch_plan_padded_cuda_workspace(int64_t A, int64_t E) { return 2 * num_chunks(A) * E; }

void dispatch_plan_padded_cuda(const int64_t* expert_ids, int64_t A, int64_t E, int64_t capacity,
                               int64_t* counts, int64_t* assignment_to_row, int64_t* row_to_assignment,
                               int64_t* workspace, void* stream) {
  const cudaStream_t s = cuda::as_stream(stream);
  // 0xFF bytes = -1 in two's complement: every row starts as padding.
  cuda::check(cudaMemsetAsync(row_to_assignment, 0xFF, sizeof(int64_t) * E * capacity, s),
              "dispatch plan: clearing row_to_assignment");
  const int64_t chunks = num_chunks(A);
  if (chunks == 0) {
    cuda::check(cudaMemsetAsync(counts, 0, sizeof(int64_t) * E, s), "dispatch plan: clearing counts");
    return;
  }
  int64_t* chunk_counts = workspace;
  int64_t* chunk_base = workspace + chunks * E;
  chunk_histogram_kernel<<<static_cast<unsigned int>(chunks), kChunk, sizeof(int) * E, s>>>(expert_ids, A, E,
                                                                                           chunk_counts);
  cuda::check_launch("dispatch plan histogram kernel");
  chunk_scan_kernel<<<cuda::blocks_for(E, 128), 128, 0, s>>>(chunk_counts, chunks, E, chunk_base, counts);
  cuda::check_launch("dispatch plan scan kernel");
  place_kernel<<<static_cast<unsigned int>(chunks), kChunk, 0, s>>>(expert_ids, A, E, capacity, chunk_base,
                                                                   assignment_to_row, row_to_assignment);
  cuda::check_launch("dispatch plan place kernel");
}

template <typename scalar_t>
void permute_forward_cuda(const scalar_t* x, const int64_t* row_to_assignment, int64_t R, int64_t k, int64_t H,
                          scalar_t* rows, void* stream) {
  if (R == 0 || H == 0) return;
  permute_forward_kernel<scalar_t><<<static_cast<unsigned int>(R), cuda::threads_for_row(H), 0,
                                     cuda::as_stream(stream)>>>(
      x, row_to_assignment, R, k, H, rows);
  cuda::check_launch("permute forward kernel");
}

template <typename scalar_t>
void permute_backward_cuda(const scalar_t* grad_rows, const int64_t* assignment_to_row, int64_t T, int64_t k,
                           int64_t H, scalar_t* grad_x, void* stream) {
  if (T == 0 || H == 0) return;
  permute_backward_kernel<scalar_t><<<static_cast<unsigned int>(T), cuda::threads_for_row(H), 0,
                                     cuda::as_stream(stream)>>>(
      grad_rows, assignment_to_row, k, H, grad_x);
  cuda::check_launch("permute backward kernel");
}

template void permute_forward_cuda<float>(const float*, const int64_t*, int64_t, int64_t, int64_t, float*, void*);
template void permute_forward_cuda<double>(const double*, const int64_t*, int64_t, int64_t, int64_t, double*,
                                           void*);
template void permute_backward_cuda<float>(const float*, const int64_t*, int64_t, int64_t, int64_t, float*,
                                           void*);
template void permute_backward_cuda<double>(const double*, const int64_t*, int64_t, int64_t, int64_t, double*,
                                            void*);

}  // namespace moe::kernels
