#include "workers.h"

#include <thread>

#include "../model/metrics.h"
#include "convert.h"

namespace moe::binding {

// ---------------------------------------------------------------------------------------------------
// Inference jobs
// ---------------------------------------------------------------------------------------------------

PromiseWorker::PromiseWorker(Napi::Env env, std::shared_ptr<Session> session)
    : Napi::AsyncWorker(env, "torch-moe:inference"),
      session_(std::move(session)),
      deferred_(Napi::Promise::Deferred::New(env)) {
  session_->readers += 1;
}

PromiseWorker::~PromiseWorker() = default;

void PromiseWorker::Execute() {
  try {
    Run();
  } catch (...) {
    error_ = capture_current_exception();
  }
}

void PromiseWorker::OnOK() {
  session_->readers -= 1;
  Napi::Env env = Env();
  if (error_) {
    deferred_.Reject(to_js_error(env, *error_).Value());
    return;
  }
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (...) {
    deferred_.Reject(to_js_error(env, capture_current_exception()).Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& e) {
  session_->readers -= 1;
  deferred_.Reject(e.Value());
}

namespace {

class InferenceWorker : public PromiseWorker {
 public:
  InferenceWorker(Napi::Env env, std::shared_ptr<Session> s, InferenceKind kind, at::Tensor inputs,
                  at::Tensor labels, int64_t batch_size)
      : PromiseWorker(env, std::move(s)), kind_(kind), inputs_(std::move(inputs)), labels_(std::move(labels)),
        batch_size_(batch_size) {}

 protected:
  void Run() override {
    auto& m = *session_->model;
    switch (kind_) {
      case InferenceKind::kEvaluate: eval_ = model::evaluate(m, inputs_, labels_, batch_size_); break;
      case InferenceKind::kRoutingStats: routing_ = model::routing_stats(m, inputs_, labels_, batch_size_); break;
      case InferenceKind::kPredict: probs_ = model::predict(m, inputs_, batch_size_); break;
    }
  }
  Napi::Value Result(Napi::Env env) override {
    switch (kind_) {
      case InferenceKind::kEvaluate: return to_js(env, eval_);
      case InferenceKind::kRoutingStats: return to_js(env, routing_);
      default: return float32_from_tensor(env, probs_);
    }
  }

 private:
  InferenceKind kind_;
  at::Tensor inputs_, labels_, probs_;
  int64_t batch_size_;
  model::EvalResult eval_;
  model::RoutingStats routing_;
};

}  // namespace

Napi::Promise start_inference(Napi::Env env, std::shared_ptr<Session> session, InferenceKind kind,
                              at::Tensor inputs, at::Tensor labels, int64_t batch_size) {
  auto* worker = new InferenceWorker(env, std::move(session), kind, std::move(inputs), std::move(labels),
                                     batch_size);  // owned and deleted by node-addon-api after OnOK
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// ---------------------------------------------------------------------------------------------------
// Training on a dedicated thread
// ---------------------------------------------------------------------------------------------------

namespace {

struct TrainJob {
  TrainJob(Napi::Env env, std::shared_ptr<Session> s, Napi::Object owner)
      : deferred(Napi::Promise::Deferred::New(env)), session(std::move(s)),
        owner(Napi::Persistent(owner)) {}
  Napi::Promise::Deferred deferred;
  std::shared_ptr<Session> session;
  Napi::ObjectReference owner;  // keeps the JS model object (and so the handle) alive while training
  std::thread thread;
  model::TrainResult result;
  std::optional<NativeError> error;
  std::optional<Napi::Error> callback_error;  // an exception thrown by on_epoch stops training
};

void settle(Napi::Env env, TrainJob* job) {
  job->thread.join();
  job->session->training = false;
  if (job->callback_error) {
    job->deferred.Reject(job->callback_error->Value());
  } else if (job->error) {
    job->deferred.Reject(to_js_error(env, *job->error).Value());
  } else {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array epochs = Napi::Array::New(env, job->result.epochs.size());
    for (size_t i = 0; i < job->result.epochs.size(); ++i) {
      epochs.Set(static_cast<uint32_t>(i), to_js(env, job->result.epochs[i]));
    }
    out.Set("epochs", epochs);
    out.Set("stopped", Napi::Boolean::New(env, job->result.stopped));
    job->deferred.Resolve(out);
  }
  delete job;
}

}  // namespace

Napi::Promise start_training(Napi::Env env, std::shared_ptr<Session> session, Napi::Object owner,
                             at::Tensor inputs, at::Tensor labels, model::TrainConfig config,
                             Napi::Function on_epoch) {
  auto* job = new TrainJob(env, session, owner);
  Napi::Promise promise = job->deferred.Promise();
  if (on_epoch.IsEmpty()) on_epoch = Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
  // The finaliser runs on the JS thread once the training thread has released the function: the one
  // place where the promise is settled and the job freed.
  auto tsfn = Napi::ThreadSafeFunction::New(env, on_epoch, "torch-moe:train", 0, 1, job,
                                            [](Napi::Env env, TrainJob* j) { settle(env, j); });
  session->training = true;
  session->stop.store(false);
  config.shuffle_seed = session->model->config().seed * 1000003ULL + session->trainer.train_calls;
  job->thread = std::thread([job, tsfn, inputs, labels, config]() mutable {
    auto report = [&](const model::EpochMetrics& m) {
      auto* copy = new model::EpochMetrics(m);
      tsfn.BlockingCall(copy, [job](Napi::Env env, Napi::Function cb, model::EpochMetrics* data) {
        std::unique_ptr<model::EpochMetrics> owned(data);
        try {
          cb.Call({to_js(env, *owned)});
        } catch (const Napi::Error& e) {
          if (!job->callback_error) job->callback_error = e;
          job->session->stop.store(true);
        }
      });
    };
    try {
      job->result = model::train(*job->session->model, job->session->trainer, inputs, labels, config, report,
                                 job->session->stop);
    } catch (...) {
      job->error = capture_current_exception();
    }
    tsfn.Release();
  });
  return promise;
}

}  // namespace moe::binding
