// Runs every registered native test and ends with "N passed, N failed" (exit 1 on any failure).
#include <cstdio>
#include <cstring>

#include "testing.h"

namespace moe::testing {

std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}

void expect_close(const torch::Tensor& a, const torch::Tensor& ref, double atol, double rtol, const std::string& what) {
  EXPECT_TRUE(a.sizes() == ref.sizes(), what, ": shape ", a.sizes(), " vs reference ", ref.sizes());
  if (a.numel() == 0) return;
  const auto ad = a.to(torch::kDouble), rd = ref.to(torch::kDouble);
  const auto excess = (ad - rd).abs() - (atol + rtol * rd.abs());
  const int64_t worst = excess.reshape({-1}).argmax().item<int64_t>();
  const double e = excess.reshape({-1})[worst].item<double>();
  EXPECT_TRUE(e <= 0, what, ": element ", worst, " is ", ad.reshape({-1})[worst].item<double>(), " vs reference ",
              rd.reshape({-1})[worst].item<double>(), " (atol ", atol, ", rtol ", rtol, ")");
}

void expect_equal(const torch::Tensor& a, const torch::Tensor& ref, const std::string& what) {
  EXPECT_TRUE(a.sizes() == ref.sizes(), what, ": shape ", a.sizes(), " vs reference ", ref.sizes());
  EXPECT_TRUE(torch::equal(a.to(ref.scalar_type()), ref), what, ": values differ from the reference");
}

model::ModelConfig small_moe_config(int64_t inputs, int64_t hidden, int64_t expert_hidden, int64_t experts,
                                    int64_t classes) {
  model::ModelConfig c;  // defaults: the reference MoE (top-2)
  c.input_size = inputs;
  c.hidden_size = hidden;
  c.expert_hidden_size = expert_hidden;
  c.num_experts = experts;
  c.num_classes = classes;
  return c;
}

torch::Tensor random_choices(int64_t T, int64_t E, int64_t k) {
  if (T == 0) return torch::empty({0, k}, torch::kLong);
  return torch::rand({T, E}).argsort(int64_t{1}, false).narrow(1, 0, k).contiguous();
}

torch::Tensor finite_difference(const std::function<double(const torch::Tensor&)>& f, const torch::Tensor& x,
                                double eps) {
  torch::Tensor xc = x.detach().to(torch::kDouble).clone().contiguous();
  torch::Tensor grad = torch::zeros_like(xc);
  double* p = xc.data_ptr<double>();
  double* g = grad.data_ptr<double>();
  for (int64_t i = 0; i < xc.numel(); ++i) {
    const double orig = p[i];
    p[i] = orig + eps;
    const double up = f(xc);
    p[i] = orig - eps;
    const double down = f(xc);
    p[i] = orig;
    g[i] = (up - down) / (2 * eps);
  }
  return grad;
}

}  // namespace moe::testing

int main(int argc, char** argv) {
  using namespace moe::testing;
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0, skipped = 0;
  for (const auto& t : registry()) {
    if (filter && !std::strstr(t.name.c_str(), filter)) continue;
    try {
      t.fn();
      ++passed;
      std::printf("ok   %s\n", t.name.c_str());
    } catch (const Skipped& s) {
      ++skipped;
      std::printf("skip %s: %s\n", t.name.c_str(), s.what());
    } catch (const std::exception& e) {
      ++failed;
      std::printf("FAIL %s\n     %s\n", t.name.c_str(), e.what());
    }
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}
