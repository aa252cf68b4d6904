// JS <-> native conversions, all on the JS thread: TypedArrays become tensors here so that worker threads
// never touch a JS value (training data is copied; inference inputs are borrowed, see float_rows_view_js);
// results become plain objects and TypedArrays.
#pragma once
#include <napi.h>

#include <ATen/ATen.h>

#include "../model/config.h"
#include "../model/metrics.h"
#include "../model/trainer.h"

namespace moe::binding {

// Float32Array of n*cols values -> [n,cols] float32 tensor (copied).
at::Tensor float_rows_from_js(Napi::Env env, const Napi::Value& value, int64_t cols, const char* name);
// The same checks, but the tensor is a view of the array's memory (no copy: an evaluate of 10,000 MNIST
// images would copy 31 MB into fresh pages on the JS thread). The caller must keep the array referenced
// for as long as the tensor is used, and stop using it when the array's environment is torn down.
at::Tensor float_rows_view_js(Napi::Env env, const Napi::Value& value, int64_t cols, const char* name);
// Uint8Array | Int32Array | Uint16Array of n labels -> [n] int64 tensor (copied).
at::Tensor labels_from_js(Napi::Env env, const Napi::Value& value, int64_t n, const char* name);

model::ModelConfig model_config_from_js(Napi::Env env, const Napi::Object& obj);
model::TrainConfig train_config_from_js(Napi::Env env, const Napi::Object& obj);
// Run-time choices that are not part of a model file: { device: 'cpu'|'cuda', forceBalancedRouting }.
void apply_runtime_options(Napi::Env env, const Napi::Object& obj, model::ModelConfig& config);

Napi::Object to_js(Napi::Env env, const model::EpochMetrics& m);
Napi::Object to_js(Napi::Env env, const model::EvalResult& r);
Napi::Object to_js(Napi::Env env, const model::RoutingStats& r);
// { probabilities, routingOffsets: Int32Array, experts: Int32Array, weights: Float32Array }
Napi::Object to_js(Napi::Env env, const model::Prediction& p);
Napi::Float32Array float32_from_tensor(Napi::Env env, const at::Tensor& t);

}  // namespace moe::binding
