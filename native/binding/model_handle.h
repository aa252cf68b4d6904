// The JS-visible native model: one ObjectWrap per model. Converts arguments, checks the scheduling flags
// (disposed, busy), and hands the work to workers.*. No math here.
#pragma once
#include <napi.h>

#include <memory>

#include "session.h"

namespace moe::binding {

class ModelHandle : public Napi::ObjectWrap<ModelHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ModelHandle(const Napi::CallbackInfo& info);  // new ModelHandle(config, { device, forceBalancedRouting })

 private:
  Napi::Value ParamCount(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);           // -> { device, expertPath }
  Napi::Value Train(const Napi::CallbackInfo& info);          // (inputs, labels, options, onEpoch?)
  Napi::Value RequestStop(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);       // (inputs, labels, batchSize)
  Napi::Value RoutingStats(const Napi::CallbackInfo& info);   // (inputs, labels, batchSize)
  Napi::Value Predict(const Napi::CallbackInfo& info);        // (inputs, batchSize)
  Napi::Value GetState(const Napi::CallbackInfo& info);       // -> [{ name, shape, data }]
  Napi::Value SetState(const Napi::CallbackInfo& info);       // ([{ name, shape, data }])
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  Session& live(Napi::Env env);           // throws if disposed
  Session& not_training(Napi::Env env);   // throws if disposed or training
  Session& idle(Napi::Env env);           // throws if disposed or training or reading
  Napi::Value inference(const Napi::CallbackInfo& info, int kind);

  std::shared_ptr<Session> session_;
};

}  // namespace moe::binding
