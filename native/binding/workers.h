// Scheduling of the slow calls. Inference jobs are AsyncWorkers (libuv pool, short); training runs on a
// thread of its own so it never holds one of libuv's four pool threads for minutes, and reports epochs
// through a ThreadSafeFunction. Both settle a Promise on the JS thread.
#pragma once
#include <napi.h>

#include <memory>
#include <optional>

#include "errors.h"
#include "session.h"

namespace moe::binding {

// Base for an inference job: Run() on a pool thread, Result() on the JS thread; errors go through the funnel.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::shared_ptr<Session> session);
  ~PromiseWorker() override;
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;
  std::shared_ptr<Session> session_;

 private:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;
  Napi::Promise::Deferred deferred_;
  std::optional<NativeError> error_;
};

// inputs [n,in], labels [n] (may be undefined for predict) -> evaluate / routingStats / predict.
enum class InferenceKind { kEvaluate, kRoutingStats, kPredict };
Napi::Promise start_inference(Napi::Env env, std::shared_ptr<Session> session, InferenceKind kind,
                              at::Tensor inputs, at::Tensor labels, int64_t batch_size);

// Starts training on its own thread; on_epoch (may be empty) gets one metrics object per epoch.
// Resolves with { epochs: [...], stopped }.
Napi::Promise start_training(Napi::Env env, std::shared_ptr<Session> session, Napi::Object owner,
                             at::Tensor inputs, at::Tensor labels, model::TrainConfig config,
                             Napi::Function on_epoch);

}  // namespace moe::binding
