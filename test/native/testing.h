// A minimal test harness for the native tests: registration, float comparisons with explicit tolerances,
// exact comparisons, a central-difference gradient checker in float64, and shared test inputs (random
// expert choices, a small model config). No dependencies beyond libtorch.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../native/model/config.h"

namespace moe::testing {

struct TestCase {
  std::string name;
  std::function<void()> fn;
};
std::vector<TestCase>& registry();

struct Register {
  Register(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

#define MOE_TEST(name)                                                 \
  static void name();                                                  \
  static ::moe::testing::Register name##_registered(#name, &name);     \
  static void name()

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown by a test that cannot run here (no GPU, no CUDA kernels); reported as "skip", with the reason.
struct Skipped : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define EXPECT_TRUE(cond, ...)                                                              \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::ostringstream os_;                                                               \
      os_ << __FILE__ << ":" << __LINE__ << ": expected " #cond " " << c10::str(__VA_ARGS__); \
      throw ::moe::testing::Failure(os_.str());                                             \
    }                                                                                       \
  } while (0)

// |a - ref| <= atol + rtol * |ref| elementwise; reports the worst element.
void expect_close(const torch::Tensor& a, const torch::Tensor& ref, double atol, double rtol, const std::string& what);
// Same shape, same dtype class, identical values.
void expect_equal(const torch::Tensor& a, const torch::Tensor& ref, const std::string& what);

// A small top-2 MoE config for tests: the sizes given, every other field the reference defaults.
model::ModelConfig small_moe_config(int64_t inputs, int64_t hidden, int64_t expert_hidden, int64_t experts,
                                    int64_t classes);

// [T,k] int64 expert choices, k distinct experts per token in random order, as the gate produces.
torch::Tensor random_choices(int64_t T, int64_t E, int64_t k);

// Central differences of a scalar function f at x (float64), eps ~1e-6. Returns df/dx with x's shape.
torch::Tensor finite_difference(const std::function<double(const torch::Tensor&)>& f, const torch::Tensor& x,
                                double eps = 1e-6);

}  // namespace moe::testing
