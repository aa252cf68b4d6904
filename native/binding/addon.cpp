// Module registration: the ModelHandle class, the thread-count control and process-wide capability queries.
#include <napi.h>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "../ops/cuda_support.h"
#include "compute_thread.h"
#include "distributed.h"
#include "errors.h"
#include "model_handle.h"

namespace moe::binding {
namespace {

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw_js(env, ErrorKind::kTypeError, "Expected an integer >= 1 for threads");
  const double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 1 && n <= 1024) || static_cast<int64_t>(n) != n) {
    throw_js(env, ErrorKind::kRangeError, "Expected an integer in [1, 1024] for threads");
  }
  ComputeThread::instance().set_num_threads(static_cast<int>(n));
  return env.Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ComputeThread::instance().num_threads());
}

// libtorch's inter-op pool (torch-moe runs no inter-op work; doctor reports it).
Napi::Value GetNumInteropThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_interop_threads());
}

Napi::Object BuildInfo(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("libtorchVersion", Napi::String::New(env, TORCH_VERSION));
  o.Set("cudaAvailable", Napi::Boolean::New(env, torch::cuda::is_available()));
  o.Set("cudaKernels", Napi::Boolean::New(env, ops::cuda_kernels_built()));
  // The C++ ABI the addon was compiled with: a libtorch of the other ABI has none of its symbols.
  o.Set("cxx11Abi", Napi::Boolean::New(env, _GLIBCXX_USE_CXX11_ABI != 0));
  o.Set("cudaDevices", Napi::Number::New(env, static_cast<double>(torch::cuda::is_available() ? torch::cuda::device_count() : 0)));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // The JS thread only converts; an OpenMP team of its own (a large copy) would be a second master
  // thread (see compute_thread.h). Initialise its libtorch thread state, then keep it at one thread.
  at::get_num_threads();
  at::set_num_threads(1);
  exports.Set("ModelHandle", ModelHandle::Define(env));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("getNumInteropThreads", Napi::Function::New(env, GetNumInteropThreads));
  exports.Set("buildInfo", BuildInfo(env));
  register_distributed(env, exports);
  return exports;
}

}  // namespace
}  // namespace moe::binding

static Napi::Object InitTorchMoe(Napi::Env env, Napi::Object exports) { return moe::binding::Init(env, exports); }

NODE_API_MODULE(torch_moe, InitTorchMoe)
