#include "workers.h"

#include <optional>

#include "../model/metrics.h"
#include "compute_thread.h"
#include "convert.h"
#include "errors.h"

namespace moe::binding {
namespace {

// What every job has: its promise, the session it works on, and the error its run may have thrown.
struct Job {
  Job(Napi::Env env, std::shared_ptr<Session> s)
      : deferred(Napi::Promise::Deferred::New(env)), session(std::move(s)) {}
  virtual ~Job() = default;
  virtual void run() = 0;                  // compute thread
  virtual void settle(Napi::Env env) = 0;  // JS thread, after run
  Napi::Promise::Deferred deferred;
  std::shared_ptr<Session> session;
  Napi::ThreadSafeFunction tsfn;
  std::optional<NativeError> error;
};

// Queues job->run() on the compute thread; when it returns, the thread-safe function is released and its
// finaliser settles the job on the JS thread and frees it.
Napi::Promise launch(Napi::Env env, Job* job, Napi::Function callback, const char* name,
                     ComputeThread::JobKind kind) {
  Napi::Promise promise = job->deferred.Promise();
  if (callback.IsEmpty()) callback = Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
  job->tsfn = Napi::ThreadSafeFunction::New(env, callback, name, 0, 1, job, [](Napi::Env env, Job* j) {
    std::unique_ptr<Job> owned(j);
    owned->settle(env);
  });
  Napi::ThreadSafeFunction tsfn = job->tsfn;
  ComputeThread::instance().post(kind, [job, tsfn]() mutable {
    try {
      job->run();
    } catch (...) {
      job->error = capture_current_exception();
    }
    tsfn.Release();
  });
  return promise;
}

class InferenceJob : public Job {
 public:
  InferenceJob(Napi::Env env, std::shared_ptr<Session> s, InferenceKind kind, at::Tensor inputs, at::Tensor labels,
               int64_t batch_size)
      : Job(env, std::move(s)), kind_(kind), inputs_(std::move(inputs)), labels_(std::move(labels)),
        batch_size_(batch_size) {
    session->readers += 1;
  }

  void run() override {
    auto& m = *session->model;
    switch (kind_) {
      case InferenceKind::kEvaluate: eval_ = model::evaluate(m, inputs_, labels_, batch_size_); break;
      case InferenceKind::kRoutingStats: routing_ = model::routing_stats(m, inputs_, labels_, batch_size_); break;
      case InferenceKind::kPredict: probs_ = model::predict(m, inputs_, batch_size_); break;
    }
  }

  void settle(Napi::Env env) override {
    session->readers -= 1;
    if (error) {
      deferred.Reject(to_js_error(env, *error).Value());
      return;
    }
    try {
      deferred.Resolve(result(env));
    } catch (const Napi::Error& e) {
      deferred.Reject(e.Value());
    } catch (...) {
      deferred.Reject(to_js_error(env, capture_current_exception()).Value());
    }
  }

 private:
  Napi::Value result(Napi::Env env) {
    switch (kind_) {
      case InferenceKind::kEvaluate: return to_js(env, eval_);
      case InferenceKind::kRoutingStats: return to_js(env, routing_);
      default: return float32_from_tensor(env, probs_);
    }
  }

  InferenceKind kind_;
  at::Tensor inputs_, labels_, probs_;
  int64_t batch_size_;
  model::EvalResult eval_;
  model::RoutingStats routing_;
};

class TrainJob : public Job {
 public:
  TrainJob(Napi::Env env, std::shared_ptr<Session> s, Napi::Object owner, at::Tensor inputs, at::Tensor labels,
           model::TrainConfig config)
      : Job(env, std::move(s)), owner_(Napi::Persistent(owner)), inputs_(std::move(inputs)),
        labels_(std::move(labels)), config_(config) {}

  void run() override {
    auto report = [this](const model::EpochMetrics& m) {
      auto* copy = new model::EpochMetrics(m);
      tsfn.BlockingCall(copy, [this](Napi::Env env, Napi::Function cb, model::EpochMetrics* data) {
        std::unique_ptr<model::EpochMetrics> owned(data);
        try {
          cb.Call({to_js(env, *owned)});
        } catch (const Napi::Error& e) {
          if (!callback_error_) callback_error_ = e;  // an exception thrown by onEpochEnd stops training
          session->stop.store(true);
        }
      });
    };
    result_ = model::train(*session->model, session->trainer, inputs_, labels_, config_, report, session->stop,
                           [] { ComputeThread::instance().run_short_jobs(); });
  }

  void settle(Napi::Env env) override {
    session->training = false;
    if (callback_error_) {
      deferred.Reject(callback_error_->Value());
    } else if (error) {
      deferred.Reject(to_js_error(env, *error).Value());
    } else {
      Napi::Object out = Napi::Object::New(env);
      Napi::Array epochs = Napi::Array::New(env, result_.epochs.size());
      for (size_t i = 0; i < result_.epochs.size(); ++i) {
        epochs.Set(static_cast<uint32_t>(i), to_js(env, result_.epochs[i]));
      }
      out.Set("epochs", epochs);
      out.Set("stopped", Napi::Boolean::New(env, result_.stopped));
      deferred.Resolve(out);
    }
  }

 private:
  Napi::ObjectReference owner_;  // keeps the JS model object (and so the handle) alive while training
  at::Tensor inputs_, labels_;
  model::TrainConfig config_;
  model::TrainResult result_;
  std::optional<Napi::Error> callback_error_;
};

}  // namespace

Napi::Promise start_inference(Napi::Env env, std::shared_ptr<Session> session, InferenceKind kind,
                              at::Tensor inputs, at::Tensor labels, int64_t batch_size) {
  auto* job = new InferenceJob(env, std::move(session), kind, std::move(inputs), std::move(labels), batch_size);
  return launch(env, job, Napi::Function(), "torch-moe:inference", ComputeThread::JobKind::kShort);
}

Napi::Promise start_training(Napi::Env env, std::shared_ptr<Session> session, Napi::Object owner,
                             at::Tensor inputs, at::Tensor labels, model::TrainConfig config,
                             Napi::Function on_epoch) {
  session->training = true;
  session->stop.store(false);
  config.shuffle_seed = session->model->config().seed * 1000003ULL + session->trainer.train_calls;
  auto* job = new TrainJob(env, std::move(session), owner, std::move(inputs), std::move(labels), config);
  return launch(env, job, on_epoch, "torch-moe:train", ComputeThread::JobKind::kLong);
}

}  // namespace moe::binding
