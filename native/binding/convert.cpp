#include "convert.h"

#include <cmath>
#include <cstring>
#include <string>

#include "../dist/group.h"

#include "errors.h"

namespace moe::binding {
namespace {

int64_t int_field(Napi::Env env, const Napi::Object& obj, const char* name, int64_t fallback) {
  if (!obj.Has(name) || obj.Get(name).IsUndefined()) return fallback;
  const Napi::Value v = obj.Get(name);
  if (!v.IsNumber()) throw_js(env, ErrorKind::kTypeError, std::string("Expected an integer for ") + name);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9007199254740991.0) {
    throw_js(env, ErrorKind::kRangeError,
             std::string("Expected an integer for ") + name + " but received " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

double number_field(Napi::Env env, const Napi::Object& obj, const char* name, double fallback) {
  if (!obj.Has(name) || obj.Get(name).IsUndefined()) return fallback;
  const Napi::Value v = obj.Get(name);
  if (!v.IsNumber()) throw_js(env, ErrorKind::kTypeError, std::string("Expected a number for ") + name);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw_js(env, ErrorKind::kRangeError, std::string("Expected a finite number for ") + name);
  return d;
}

Napi::Array doubles_to_js(Napi::Env env, const std::vector<double>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, v[i]));
  return a;
}

template <typename T>
Napi::Array matrix_to_js(Napi::Env env, const std::vector<std::vector<T>>& m) {
  Napi::Array a = Napi::Array::New(env, m.size());
  for (size_t r = 0; r < m.size(); ++r) {
    Napi::Array row = Napi::Array::New(env, m[r].size());
    for (size_t c = 0; c < m[r].size(); ++c) {
      row.Set(static_cast<uint32_t>(c), Napi::Number::New(env, static_cast<double>(m[r][c])));
    }
    a.Set(static_cast<uint32_t>(r), row);
  }
  return a;
}

Napi::Array shares_to_js(Napi::Env env, const std::vector<model::ExpertShare>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("expert", Napi::Number::New(env, static_cast<double>(v[i].expert)));
    o.Set("share", Napi::Number::New(env, v[i].share));
    a.Set(static_cast<uint32_t>(i), o);
  }
  return a;
}

}  // namespace

at::Tensor float_rows_view_js(Napi::Env env, const Napi::Value& value, int64_t cols, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw_js(env, ErrorKind::kTypeError, std::string("Expected a Float32Array for ") + name);
  }
  auto arr = value.As<Napi::Float32Array>();
  const int64_t len = static_cast<int64_t>(arr.ElementLength());
  if (cols <= 0 || len % cols != 0) {
    throw_js(env, ErrorKind::kRangeError,
             std::string("Expected ") + name + " to hold a multiple of " + std::to_string(cols) +
                 " values (one row per sample) but received " + std::to_string(len));
  }
  if (len == 0) return at::empty({0, cols}, at::kFloat);  // a detached or empty array has no memory to view
  return at::from_blob(arr.Data(), {len / cols, cols}, at::kFloat);
}

at::Tensor float_rows_from_js(Napi::Env env, const Napi::Value& value, int64_t cols, const char* name) {
  return float_rows_view_js(env, value, cols, name).clone();
}

at::Tensor labels_from_js(Napi::Env env, const Napi::Value& value, int64_t n, const char* name) {
  if (!value.IsTypedArray()) {
    throw_js(env, ErrorKind::kTypeError, std::string("Expected a Uint8Array or Int32Array for ") + name);
  }
  auto arr = value.As<Napi::TypedArray>();
  if (static_cast<int64_t>(arr.ElementLength()) != n) {
    throw_js(env, ErrorKind::kRangeError,
             std::string("Expected ") + name + " to hold " + std::to_string(n) + " labels (one per sample) but received " +
                 std::to_string(arr.ElementLength()));
  }
  at::Tensor t = at::empty({n}, at::kLong);
  int64_t* out = t.data_ptr<int64_t>();
  switch (arr.TypedArrayType()) {
    case napi_uint8_array: {
      const uint8_t* p = value.As<Napi::Uint8Array>().Data();
      for (int64_t i = 0; i < n; ++i) out[i] = p[i];
      break;
    }
    case napi_uint16_array: {
      const uint16_t* p = value.As<Napi::Uint16Array>().Data();
      for (int64_t i = 0; i < n; ++i) out[i] = p[i];
      break;
    }
    case napi_int32_array: {
      const int32_t* p = value.As<Napi::Int32Array>().Data();
      for (int64_t i = 0; i < n; ++i) out[i] = p[i];
      break;
    }
    default:
      throw_js(env, ErrorKind::kTypeError, std::string("Expected a Uint8Array, Uint16Array or Int32Array for ") + name);
  }
  return t;
}

model::ModelConfig model_config_from_js(Napi::Env env, const Napi::Object& o) {
  model::ModelConfig c;
  const std::string kind = o.Has("kind") ? o.Get("kind").ToString().Utf8Value() : "moe";
  if (kind != "moe" && kind != "dense") {
    throw_js(env, ErrorKind::kRangeError, "Expected 'moe' or 'dense' for kind but received '" + kind + "'");
  }
  c.kind = kind == "moe" ? model::ModelKind::kMoE : model::ModelKind::kDense;
  c.input_size = int_field(env, o, "inputSize", c.input_size);
  c.hidden_size = int_field(env, o, "hiddenSize", c.hidden_size);
  c.expert_hidden_size = int_field(env, o, "expertHiddenSize", c.expert_hidden_size);
  c.num_classes = int_field(env, o, "numClasses", c.num_classes);
  c.dropout = number_field(env, o, "dropout", c.dropout);
  if (c.kind == model::ModelKind::kMoE) {
    c.num_experts = int_field(env, o, "numExperts", c.num_experts);
    c.top_k = int_field(env, o, "topK", c.top_k);
    c.aux_loss_weight = number_field(env, o, "auxLossWeight", c.aux_loss_weight);
    if (o.Has("routing") && !o.Get("routing").IsUndefined()) {
      if (!o.Get("routing").IsString()) throw_js(env, ErrorKind::kTypeError, "Expected a string for routing");
      c.routing = model::parse_routing(o.Get("routing").As<Napi::String>().Utf8Value());
    }
    c.gate_noise = number_field(env, o, "gateNoise", c.gate_noise);
    c.gate_jitter = number_field(env, o, "gateJitter", c.gate_jitter);
    c.z_loss_weight = number_field(env, o, "zLossWeight", c.z_loss_weight);
    c.shared_experts = int_field(env, o, "sharedExperts", c.shared_experts);
    // null or absent = unset (dropless); 0 or less is an error, never a silent "dropless"
    if (o.Has("capacityFactor") && !o.Get("capacityFactor").IsNull() && !o.Get("capacityFactor").IsUndefined()) {
      c.capacity_factor = number_field(env, o, "capacityFactor", 0);
      if (c.capacity_factor <= 0) {
        throw_js(env, ErrorKind::kRangeError, "Expected capacityFactor > 0 (leave it unset for dropless routing)");
      }
    }
    if (o.Has("biasBalancing") && o.Get("biasBalancing").IsObject()) {
      c.bias_balancing_rate = number_field(env, o.Get("biasBalancing").As<Napi::Object>(), "rate", 0);
    }
  }
  const int64_t seed = int_field(env, o, "seed", 0);
  if (seed < 0) throw_js(env, ErrorKind::kRangeError, "Expected an integer >= 0 for seed");
  c.seed = static_cast<uint64_t>(seed);
  return c;
}

void apply_runtime_options(Napi::Env env, const Napi::Object& o, model::ModelConfig& c) {
  if (o.Has("device") && !o.Get("device").IsUndefined()) {
    const std::string device = o.Get("device").ToString().Utf8Value();
    if (device != "cpu" && device != "cuda") {
      throw_js(env, ErrorKind::kRangeError, "Expected 'cpu' or 'cuda' for device but received '" + device + "'");
    }
    c.device = device;
  }
  if (o.Has("forceBalancedRouting") && !o.Get("forceBalancedRouting").IsUndefined()) {
    if (!o.Get("forceBalancedRouting").IsBoolean()) {
      throw_js(env, ErrorKind::kTypeError, "Expected a boolean for forceBalancedRouting");
    }
    c.force_balanced_routing = o.Get("forceBalancedRouting").As<Napi::Boolean>().Value();
  }
}

model::TrainConfig train_config_from_js(Napi::Env env, const Napi::Object& o) {
  model::TrainConfig c;
  if (o.Has("cudaGraph") && !o.Get("cudaGraph").IsUndefined()) {
    if (!o.Get("cudaGraph").IsBoolean()) throw_js(env, ErrorKind::kTypeError, "Expected a boolean for cudaGraph");
    c.cuda_graph = o.Get("cudaGraph").As<Napi::Boolean>().Value();
  }
  c.epochs = int_field(env, o, "epochs", c.epochs);
  c.batch_size = int_field(env, o, "batchSize", c.batch_size);
  c.learning_rate = number_field(env, o, "learningRate", c.learning_rate);
  c.translate = int_field(env, o, "translate", c.translate);
  if (o.Has("lrSchedule") && !o.Get("lrSchedule").IsUndefined()) {
    const std::string schedule = o.Get("lrSchedule").ToString().Utf8Value();
    if (schedule != "constant" && schedule != "cosine") {
      throw_js(env, ErrorKind::kRangeError, "Expected 'constant' or 'cosine' for lrSchedule but received '" + schedule + "'");
    }
    c.lr_schedule = schedule == "cosine" ? model::LrSchedule::kCosine : model::LrSchedule::kConstant;
  }
  if (o.Has("distributed") && !o.Get("distributed").IsUndefined()) {
    if (!o.Get("distributed").IsBoolean()) throw_js(env, ErrorKind::kTypeError, "Expected a boolean for distributed");
    if (o.Get("distributed").As<Napi::Boolean>().Value()) {
      c.group = dist::default_group();
      if (!c.group) {
        throw_js(env, ErrorKind::kError, "distributed training needs this process to join a group first: call "
                 "initDistributed() (or launch with npx torch-moe train --nproc-per-node N)");
      }
    }
  }
  if (o.Has("expertParallel") && !o.Get("expertParallel").IsUndefined()) {
    if (!o.Get("expertParallel").IsBoolean()) throw_js(env, ErrorKind::kTypeError, "Expected a boolean for expertParallel");
    c.expert_parallel = o.Get("expertParallel").As<Napi::Boolean>().Value();
    if (c.expert_parallel && !c.group) {
      throw_js(env, ErrorKind::kError, "expertParallel needs distributed: true (experts are spread over the ranks)");
    }
  }
  return c;
}

Napi::Object to_js(Napi::Env env, const model::EpochMetrics& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("epoch", Napi::Number::New(env, static_cast<double>(m.epoch)));
  o.Set("loss", Napi::Number::New(env, m.loss));
  o.Set("classificationLoss", Napi::Number::New(env, m.classification_loss));
  o.Set("auxLoss", Napi::Number::New(env, m.aux_loss));
  o.Set("zLoss", Napi::Number::New(env, m.z_loss));
  o.Set("expertLoad", doubles_to_js(env, m.expert_load));
  o.Set("droppedFraction", Napi::Number::New(env, m.dropped_fraction));
  o.Set("accuracy", Napi::Number::New(env, m.accuracy));
  o.Set("learningRate", Napi::Number::New(env, m.learning_rate));
  o.Set("seconds", Napi::Number::New(env, m.seconds));
  o.Set("samples", Napi::Number::New(env, static_cast<double>(m.samples)));
  return o;
}

Napi::Object to_js(Napi::Env env, const model::EvalResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("accuracy", Napi::Number::New(env, r.accuracy));
  o.Set("loss", Napi::Number::New(env, r.loss));
  o.Set("perClassAccuracy", doubles_to_js(env, r.per_class_accuracy));
  o.Set("confusion", matrix_to_js(env, r.confusion));
  return o;
}

Napi::Object to_js(Napi::Env env, const model::RoutingStats& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("expertLoad", doubles_to_js(env, r.expert_load));
  o.Set("importance", doubles_to_js(env, r.importance));
  o.Set("perClass", matrix_to_js(env, r.per_class));
  o.Set("perClassCounts", matrix_to_js(env, r.per_class_counts));
  o.Set("primary", shares_to_js(env, r.primary));
  o.Set("secondary", shares_to_js(env, r.secondary));
  o.Set("entropy", Napi::Number::New(env, r.entropy));
  o.Set("loadCV", Napi::Number::New(env, r.load_cv));
  o.Set("coActivation", matrix_to_js(env, r.co_activation));
  o.Set("droppedFraction", Napi::Number::New(env, r.dropped_fraction));
  return o;
}

Napi::Object to_js(Napi::Env env, const model::Prediction& p) {
  auto int32s = [&](const at::Tensor& t) {
    const at::Tensor c = t.contiguous();
    Napi::Int32Array a = Napi::Int32Array::New(env, c.numel());
    if (c.numel()) std::memcpy(a.Data(), c.data_ptr<int32_t>(), c.numel() * sizeof(int32_t));
    return a;
  };
  Napi::Object o = Napi::Object::New(env);
  o.Set("probabilities", float32_from_tensor(env, p.probs));
  o.Set("routingOffsets", int32s(p.routing_offsets));
  o.Set("experts", int32s(p.experts));
  o.Set("weights", float32_from_tensor(env, p.weights));
  return o;
}

Napi::Float32Array float32_from_tensor(Napi::Env env, const at::Tensor& t) {
  // Host copy first: a CUDA model's tensors live in device memory.
  const at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  Napi::Float32Array a = Napi::Float32Array::New(env, c.numel());
  if (c.numel()) std::memcpy(a.Data(), c.data_ptr<float>(), c.numel() * sizeof(float));
  return a;
}

}  // namespace moe::binding
