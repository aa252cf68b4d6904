#include "model_handle.h"

#include <cstring>

#include "../ops/expert_ffn.h"
#include "convert.h"
#include "errors.h"
#include "workers.h"

namespace moe::binding {

Napi::Function ModelHandle::Define(Napi::Env env) {
  return DefineClass(env, "ModelHandle",
                     {InstanceMethod("paramCount", &ModelHandle::ParamCount),
                      InstanceMethod("info", &ModelHandle::Info),
                      InstanceMethod("train", &ModelHandle::Train),
                      InstanceMethod("requestStop", &ModelHandle::RequestStop),
                      InstanceMethod("evaluate", &ModelHandle::Evaluate),
                      InstanceMethod("routingStats", &ModelHandle::RoutingStats),
                      InstanceMethod("predict", &ModelHandle::Predict),
                      InstanceMethod("getState", &ModelHandle::GetState),
                      InstanceMethod("setState", &ModelHandle::SetState),
                      InstanceMethod("dispose", &ModelHandle::Dispose)});
}

ModelHandle::ModelHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelHandle>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw_js(env, ErrorKind::kTypeError, "Expected a config object");
  guarded(env, [&] {
    session_ = std::make_shared<Session>();
    model::ModelConfig config = model_config_from_js(env, info[0].As<Napi::Object>());
    if (info[1].IsObject()) apply_runtime_options(env, info[1].As<Napi::Object>(), config);
    session_->model = model::make_classifier(config);
    session_->model->eval();
  });
}

Session& ModelHandle::live(Napi::Env env) {
  if (!session_) throw_js(env, ErrorKind::kError, "The model has been disposed", "ERR_TORCH_MOE_DISPOSED");
  return *session_;
}

Session& ModelHandle::not_training(Napi::Env env) {
  Session& s = live(env);
  if (s.training) {
    throw_js(env, ErrorKind::kError, "The model is training; wait for train() to settle or abort it",
             "ERR_TORCH_MOE_BUSY");
  }
  return s;
}

Session& ModelHandle::idle(Napi::Env env) {
  Session& s = not_training(env);
  if (s.readers > 0) {
    throw_js(env, ErrorKind::kError, "The model is running evaluate/predict/routingStats; wait for them first",
             "ERR_TORCH_MOE_BUSY");
  }
  return s;
}

Napi::Value ModelHandle::ParamCount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto pc = live(env).model->param_count();
  Napi::Object o = Napi::Object::New(env);
  o.Set("total", Napi::Number::New(env, static_cast<double>(pc.total)));
  o.Set("active", Napi::Number::New(env, static_cast<double>(pc.active)));
  return o;
}

Napi::Value ModelHandle::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const model::Classifier& m = *live(env).model;
  const bool cuda = m.device().is_cuda();
  Napi::Object o = Napi::Object::New(env);
  o.Set("device", Napi::String::New(env, cuda ? "cuda" : "cpu"));
  o.Set("expertPath", Napi::String::New(env, m.config().kind == model::ModelKind::kMoE ? ops::expert_path_name(cuda)
                                                                                      : "dense"));
  return o;
}

Napi::Value ModelHandle::Train(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  idle(env);
  const int64_t in = session_->model->config().input_size;
  at::Tensor inputs = float_rows_from_js(env, info[0], in, "inputs");
  at::Tensor labels = labels_from_js(env, info[1], inputs.size(0), "labels");
  if (!info[2].IsObject()) throw_js(env, ErrorKind::kTypeError, "Expected an options object");
  model::TrainConfig config = guarded(env, [&] {
    auto c = train_config_from_js(env, info[2].As<Napi::Object>());
    model::validate(c);
    return c;
  });
  Napi::Function on_epoch = info[3].IsFunction() ? info[3].As<Napi::Function>() : Napi::Function();
  const bool stopped = info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();
  return start_training(env, session_, info.This().As<Napi::Object>(), std::move(inputs), std::move(labels),
                        config, on_epoch, stopped);
}

Napi::Value ModelHandle::RequestStop(const Napi::CallbackInfo& info) {
  if (session_) session_->stop.store(true);
  return info.Env().Undefined();
}

Napi::Value ModelHandle::inference(const Napi::CallbackInfo& info, int kind) {
  Napi::Env env = info.Env();
  Session& s = not_training(env);
  const auto k = static_cast<InferenceKind>(kind);
  const int64_t in = s.model->config().input_size;
  at::Tensor inputs = float_rows_view_js(env, info[0], in, "inputs");  // read in place: no copy
  at::Tensor labels;
  size_t batch_arg = 1;
  if (k != InferenceKind::kPredict && k != InferenceKind::kPredictRouting) {
    labels = labels_from_js(env, info[1], inputs.size(0), "labels");
    batch_arg = 2;
  }
  const int64_t batch = info[batch_arg].IsNumber() ? info[batch_arg].As<Napi::Number>().Int64Value() : 1000;
  return start_inference(env, session_, k, info[0].As<Napi::Object>(), std::move(inputs), std::move(labels), batch);
}

Napi::Value ModelHandle::Evaluate(const Napi::CallbackInfo& info) {
  return inference(info, static_cast<int>(InferenceKind::kEvaluate));
}
Napi::Value ModelHandle::RoutingStats(const Napi::CallbackInfo& info) {
  return inference(info, static_cast<int>(InferenceKind::kRoutingStats));
}
// predict(inputs, batchSize, withRouting)
Napi::Value ModelHandle::Predict(const Napi::CallbackInfo& info) {
  const bool routing = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  return inference(info, static_cast<int>(routing ? InferenceKind::kPredictRouting : InferenceKind::kPredict));
}

Napi::Value ModelHandle::GetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Reading the weights is safe beside running inference; only training changes them.
  Session& s = not_training(env);
  return guarded(env, [&]() -> Napi::Value {
    const model::NamedTensors state = s.model->named_state();
    Napi::Array out = Napi::Array::New(env, state.size());
    for (size_t i = 0; i < state.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", state[i].first);
      Napi::Array shape = Napi::Array::New(env, state[i].second.dim());
      for (int64_t d = 0; d < state[i].second.dim(); ++d) {
        shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, static_cast<double>(state[i].second.size(d))));
      }
      o.Set("shape", shape);
      o.Set("data", float32_from_tensor(env, state[i].second));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  });
}

Napi::Value ModelHandle::SetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Session& s = idle(env);
  if (!info[0].IsArray()) throw_js(env, ErrorKind::kTypeError, "Expected an array of { name, shape, data }");
  Napi::Array arr = info[0].As<Napi::Array>();
  model::NamedTensors state;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    if (!arr.Get(i).IsObject()) throw_js(env, ErrorKind::kTypeError, "Expected { name, shape, data } entries");
    Napi::Object o = arr.Get(i).As<Napi::Object>();
    const std::string name = o.Get("name").ToString().Utf8Value();
    if (!o.Get("shape").IsArray()) throw_js(env, ErrorKind::kTypeError, "Expected an array for the shape of " + name);
    Napi::Array shape_js = o.Get("shape").As<Napi::Array>();
    std::vector<int64_t> shape;
    int64_t numel = 1;
    for (uint32_t d = 0; d < shape_js.Length(); ++d) {
      const int64_t v = shape_js.Get(d).ToNumber().Int64Value();
      if (v < 0) throw_js(env, ErrorKind::kRangeError, "Negative dimension in the shape of " + name);
      shape.push_back(v);
      numel *= v;
    }
    at::Tensor t = float_rows_from_js(env, o.Get("data"), 1, name.c_str()).view({-1});
    if (t.numel() != numel) {
      throw_js(env, ErrorKind::kRangeError, "Tensor " + name + " holds " + std::to_string(t.numel()) +
                                                " values but its shape needs " + std::to_string(numel));
    }
    state.emplace_back(name, t.view(shape));
  }
  guarded(env, [&] { s.model->load_state(state); });
  return env.Undefined();
}

Napi::Value ModelHandle::Dispose(const Napi::CallbackInfo& info) {
  // Running jobs hold their own reference to the session; a training job is asked to stop.
  if (session_) session_->stop.store(true);
  session_.reset();
  return info.Env().Undefined();
}

}  // namespace moe::binding
