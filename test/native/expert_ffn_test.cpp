// The one-op expert FFN against a per-row reference built from PyTorch ops (each row through its own
// expert's weights), forward and backward, in float64.
#include "../../native/ops/expert_ffn.h"
#include "testing.h"

#include <array>

using namespace moe;
using moe::testing::expect_close;

namespace {

// Row r belongs to the expert e with offsets[e] <= r < offsets[e+1]; the reference runs it alone.
torch::Tensor per_row_reference(const torch::Tensor& rows, const std::vector<int64_t>& offsets, const torch::Tensor& w1,
                                const torch::Tensor& b1, const torch::Tensor& w2, const torch::Tensor& b2) {
  std::vector<torch::Tensor> out;
  for (size_t e = 0; e + 1 < offsets.size(); ++e) {
    for (int64_t r = offsets[e]; r < offsets[e + 1]; ++r) {
      const auto h = torch::relu(torch::mv(w1[e], rows[r]) + b1[e]);
      out.push_back(torch::mv(w2[e], h) + b2[e]);
    }
  }
  return out.empty() ? torch::empty({0, w2.size(1)}, rows.options()) : torch::stack(out);
}

struct Shape {
  int64_t H, F, O;
  std::vector<int64_t> offsets;  // E+1 entries
};

// Tiny experts: an empty expert (1) and an expert with one row (3). O: the second layers' output width
// (H for the experts themselves, fewer when inference composes a later linear map into them).
Shape tiny(int64_t O) { return {6, 5, O, {0, 7, 7, 15, 16}}; }

// In float64 (BLAS) or float32 (the row kernels where the CPU has AVX-512F: x·Wᵀ on W as stored or
// transposed, strided weight gradients), with tolerances to match.
void check_against_per_row_reference(const Shape& shape, torch::Dtype dtype = torch::kDouble) {
  torch::manual_seed(20);
  const std::vector<int64_t>& offsets = shape.offsets;
  const int64_t E = static_cast<int64_t>(offsets.size()) - 1, H = shape.H, F = shape.F, O = shape.O;
  const int64_t A = offsets.back();
  auto opts = torch::TensorOptions().dtype(dtype);
  const double tol = dtype == torch::kDouble ? 1e-10 : 1e-4;
  auto make = [&](std::vector<int64_t> shape) { return torch::randn(shape, opts).requires_grad_(); };
  auto rows = make({A, H}), w1 = make({E, F, H}), b1 = make({E, F}), w2 = make({E, O, F}), b2 = make({E, O});
  auto rrows = rows.detach().clone().requires_grad_(), rw1 = w1.detach().clone().requires_grad_(),
       rb1 = b1.detach().clone().requires_grad_(), rw2 = w2.detach().clone().requires_grad_(),
       rb2 = b2.detach().clone().requires_grad_();
  const auto off = torch::tensor(offsets, torch::kLong);
  const auto out = ops::expert_ffn(rows, off, w1, b1, w2, b2);
  const auto ref = per_row_reference(rrows, offsets, rw1, rb1, rw2, rb2);
  EXPECT_TRUE(out.sizes() == torch::IntArrayRef({A, O}), "output shape ", out.sizes());
  expect_close(out, ref, tol, tol, "forward");
  const auto g = torch::randn({A, O}, opts);
  out.backward(g);
  ref.backward(g);
  expect_close(rows.grad(), rrows.grad(), tol, tol, "grad rows");
  expect_close(w1.grad(), rw1.grad(), tol, tol, "grad w1");
  expect_close(b1.grad(), rb1.grad(), tol, tol, "grad b1");
  expect_close(w2.grad(), rw2.grad(), tol, tol, "grad w2");
  expect_close(b2.grad(), rb2.grad(), tol, tol, "grad b2");
}

}  // namespace

MOE_TEST(expert_ffn_matches_per_row_reference_forward_and_backward) { check_against_per_row_reference(tiny(6)); }

MOE_TEST(expert_ffn_with_narrower_second_layers_matches_per_row_reference) {
  check_against_per_row_reference(tiny(3));
}

MOE_TEST(expert_ffn_in_float32_matches_per_row_reference) { check_against_per_row_reference(tiny(6), torch::kFloat); }

MOE_TEST(expert_ffn_in_float32_at_row_kernel_sizes_matches_per_row_reference) {
  // Weights of 36 x 70 (full 16 x 16 transpose blocks and edges both ways; O = 70 > 64 columns: a full
  // 4 x 64 register block and a masked tail); experts of 40 rows (ten blocks of 4), none, 1, 13 and 29
  // (tails). Experts of up to 24 rows (1, 13) run on the weights as stored (row_gemm_nt: k = 70 and 36,
  // each with a masked last vector; 4 x 4 blocks and tails both ways), the others transposed first. 83
  // rows at 2 threads, which split the experts between them (0 to 2 | 3 and 4): each thread transposes
  // one expert into its own scratch (0; 4) and runs one on W as stored (2; 3). Then O = 10, as inference composes it.
  const int threads_before = at::get_num_threads();
  at::set_num_threads(2);
  try {
    check_against_per_row_reference({70, 36, 70, {0, 40, 40, 41, 54, 83}}, torch::kFloat);
    check_against_per_row_reference({70, 36, 10, {0, 40, 40, 41, 54, 83}}, torch::kFloat);
  } catch (...) {
    at::set_num_threads(threads_before);
    throw;
  }
  at::set_num_threads(threads_before);
}

MOE_TEST(expert_ffn_in_float32_in_16_row_tiles_matches_per_row_reference) {
  // Sizes in multiples of 16, where the forward runs tiles of 16 rows as SIMD lanes (kernels::ffn_16rows):
  // experts of 16 rows (one whole tile), 13 (a partial tile), 12 (too few: row_gemm_nt alone), 22 (a tile,
  // then 6 rows in row_gemm_nt), none and 1.
  check_against_per_row_reference({32, 48, 32, {0, 16, 29, 41, 63, 63, 64}}, torch::kFloat);
}

MOE_TEST(expert_ffn_inference_with_transposed_first_layers_matches_expert_ffn) {
  // float32 (the row kernel's type), an empty expert and one of 9 rows (a block of 4, a tail); second
  // layers of 10 outputs, as inference composes them. At 2 threads the 43 rows split at row 21, inside
  // expert 2.
  // Also sizes that are no multiple of 16 (the row kernels' masked tails) and a single hidden unit.
  torch::manual_seed(21);
  const std::vector<int64_t> offsets = {0, 9, 9, 40, 43};
  const int threads_before = at::get_num_threads();
  at::set_num_threads(2);
  for (const auto& [H, F, O] : std::vector<std::array<int64_t, 3>>{{70, 128, 10}, {33, 20, 3}, {17, 1, 19}}) {
    const int64_t E = 4;
    const auto rows = torch::randn({43, H}), w1 = torch::randn({E, F, H}) * 0.1, b1 = torch::randn({E, F}),
               w2 = torch::randn({E, O, F}) * 0.1, b2 = torch::randn({E, O});
    const auto off = torch::tensor(offsets, torch::kLong);
    c10::InferenceMode inference;
    const auto got = ops::expert_ffn_inference(rows, off, w1.transpose(1, 2).contiguous(), b1, w2, b2);
    const auto want = ops::expert_ffn(rows, off, w1, b1, w2, b2);
    expect_close(got, want, 1e-4, 1e-4,
                 "transposed first layers, H " + std::to_string(H) + ", F " + std::to_string(F) + ", O " + std::to_string(O));
  }
  at::set_num_threads(threads_before);
}

MOE_TEST(expert_ffn_rejects_inconsistent_offsets) {
  const auto w1 = torch::zeros({2, 3, 4}), b1 = torch::zeros({2, 3}), w2 = torch::zeros({2, 4, 3}),
             b2 = torch::zeros({2, 4});
  bool threw = false;
  try {
    ops::expert_ffn(torch::zeros({5, 4}), torch::tensor({0, 3, 4}, torch::kLong), w1, b1, w2, b2);
  } catch (const c10::ValueError&) {
    threw = true;
  }
  EXPECT_TRUE(threw, "offsets that do not end at the row count must raise ValueError");
}
