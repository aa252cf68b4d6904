#include "workers.h"

#include <mutex>
#include <optional>
#include <utility>

#include "../model/metrics.h"
#include "compute_thread.h"
#include "convert.h"
#include "errors.h"

namespace moe::binding {
namespace {

// What every job has: its promise, the session it works on, and the error its run may have thrown.
// Ownership is shared by the queued task and the thread-safe function's finaliser. The finaliser normally
// runs after the task released the function, but Node also runs it when the environment is torn down
// (a worker thread terminated mid-job); from then on the function is gone, so every use of it from the
// compute thread goes through with_function(), which skips it once the finaliser has run.
struct Job {
  Job(Napi::Env env, std::shared_ptr<Session> s)
      : deferred(Napi::Promise::Deferred::New(env)), session(std::move(s)) {}
  virtual ~Job() = default;
  virtual void on_queued() = 0;   // JS thread, once the job is sure to run: mark the session busy
  virtual void run() = 0;         // compute thread
  virtual void on_settled() = 0;  // JS thread, first in settle: clear the busy mark, drop JS references
  virtual std::optional<Napi::Error> rejection() { return std::nullopt; }  // a JS error that wins over all
  virtual Napi::Value result(Napi::Env env) = 0;  // JS thread, after a run without error

  // JS thread, from the finaliser: rejects with the JS or native error, else resolves with result(); a
  // failure while building the result rejects too, so the promise always settles.
  void settle(Napi::Env env) {
    on_settled();
    if (std::optional<Napi::Error> js_error = rejection()) {
      deferred.Reject(js_error->Value());
      return;
    }
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

  template <typename Fn>
  void with_function(Fn&& fn) {
    std::lock_guard<std::mutex> lock(function_mutex);
    if (!finalized) fn(tsfn);
  }

  Napi::Promise::Deferred deferred;
  std::shared_ptr<Session> session;
  Napi::ThreadSafeFunction tsfn;
  std::optional<NativeError> error;
  std::mutex function_mutex;
  bool finalized = false;  // guarded by function_mutex
};

// Queues job->run() on the compute thread; when it returns, the thread-safe function is released and its
// finaliser settles the job on the JS thread. `callback` may be empty (inference; training without an
// epoch callback): N-API allows a thread-safe function without a JS function beside a call_js callback,
// and a job only calls the one it was given.
Napi::Promise launch(Napi::Env env, std::shared_ptr<Job> job, Napi::Function callback, const char* name,
                     ComputeThread::JobKind kind) {
  Napi::Promise promise = job->deferred.Promise();
  auto* owner = new std::shared_ptr<Job>(job);  // the finaliser's share
  try {
    job->tsfn = Napi::ThreadSafeFunction::New(env, callback, name, 0, 1, owner,
                                              [](Napi::Env env, std::shared_ptr<Job>* share) {
                                                std::unique_ptr<std::shared_ptr<Job>> owned(share);
                                                Job& j = **owned;
                                                {
                                                  std::lock_guard<std::mutex> lock(j.function_mutex);
                                                  j.finalized = true;
                                                }
                                                j.session->stop.store(true);  // only matters at teardown
                                                try {
                                                  j.settle(env);
                                                } catch (...) {  // a dying environment may refuse
                                                }
                                              });
  } catch (...) {
    delete owner;
    throw;
  }
  job->on_queued();
  ComputeThread::instance().post(kind, [job] {
    try {
      job->run();
    } catch (...) {
      job->error = capture_current_exception();
    }
    job->with_function([](Napi::ThreadSafeFunction& f) { f.Release(); });
  });
  return promise;
}

class InferenceJob : public Job {
 public:
  InferenceJob(Napi::Env env, std::shared_ptr<Session> s, InferenceKind kind, Napi::Object inputs_owner,
               at::Tensor inputs, at::Tensor labels, int64_t batch_size)
      : Job(env, std::move(s)), kind_(kind), inputs_owner_(Napi::Persistent(inputs_owner)), inputs_(std::move(inputs)),
        labels_(std::move(labels)), batch_size_(batch_size) {}

  void on_queued() override { session->readers += 1; }

  // inputs_ views the JS array's memory: run() holds inputs_mutex_ while it reads them, and on_settled()
  // takes it before letting the array go. Normally run() has long returned by then; when a worker thread
  // is terminated mid-job, the finaliser settles first, and waits here for the running job (or keeps a
  // queued one from starting) before its environment frees the array.
  void run() override {
    std::lock_guard<std::mutex> lock(inputs_mutex_);
    TORCH_CHECK(!inputs_released_, "the inputs were released before the job ran (the environment was torn down)");
    auto& m = *session->model;
    switch (kind_) {
      case InferenceKind::kEvaluate: eval_ = model::evaluate(m, inputs_, labels_, batch_size_); break;
      case InferenceKind::kRoutingStats: routing_ = model::routing_stats(m, inputs_, labels_, batch_size_); break;
      case InferenceKind::kPredict: prediction_ = model::predict(m, inputs_, batch_size_); break;
      case InferenceKind::kPredictRouting: prediction_ = model::predict(m, inputs_, batch_size_, true); break;
    }
  }

  void on_settled() override {
    session->readers -= 1;
    {
      std::lock_guard<std::mutex> lock(inputs_mutex_);
      inputs_released_ = true;
      inputs_ = at::Tensor();
    }
    inputs_owner_.Reset();
  }

  Napi::Value result(Napi::Env env) override {
    switch (kind_) {
      case InferenceKind::kEvaluate: return to_js(env, eval_);
      case InferenceKind::kRoutingStats: return to_js(env, routing_);
      case InferenceKind::kPredictRouting: return to_js(env, prediction_);
      default: return float32_from_tensor(env, prediction_.probs);
    }
  }

 private:
  InferenceKind kind_;
  Napi::ObjectReference inputs_owner_;  // keeps the array inputs_ views alive until the job settles
  std::mutex inputs_mutex_;
  bool inputs_released_ = false;  // guarded by inputs_mutex_
  at::Tensor inputs_, labels_;
  model::Prediction prediction_;
  int64_t batch_size_;
  model::EvalResult eval_;
  model::RoutingStats routing_;
};

class TrainJob : public Job {
 public:
  TrainJob(Napi::Env env, std::shared_ptr<Session> s, Napi::Object owner, at::Tensor inputs, at::Tensor labels,
           model::TrainConfig config, bool stopped, bool reports)
      : Job(env, std::move(s)), owner_(Napi::Persistent(owner)), inputs_(std::move(inputs)),
        labels_(std::move(labels)), config_(config), stopped_(stopped), reports_(reports) {}

  // The stop flag is set before the job can start: the compute thread may pick it up at once.
  void on_queued() override {
    session->training = true;
    session->stop.store(stopped_);
  }

  void run() override {
    auto report = [this](const model::EpochMetrics& m) {
      auto copy = std::make_unique<model::EpochMetrics>(m);
      with_function([&](Napi::ThreadSafeFunction& f) {
        const napi_status status =
            f.BlockingCall(copy.get(), [this](Napi::Env env, Napi::Function cb, model::EpochMetrics* data) {
              std::unique_ptr<model::EpochMetrics> owned(data);
              try {
                cb.Call({to_js(env, *owned)});
              } catch (const Napi::Error& e) {
                if (!callback_error_) callback_error_ = e;  // an exception thrown by onEpochEnd stops training
                session->stop.store(true);
              }
            });
        if (status == napi_ok) copy.release();  // the JS-thread callback owns it now
      });
    };
    result_ = model::train(*session->model, session->trainer, inputs_, labels_, config_,
                           reports_ ? model::EpochCallback(report) : model::EpochCallback(), session->stop,
                           [] { ComputeThread::instance().run_short_jobs(); });
  }

  void on_settled() override {
    session->training = false;
    owner_.Reset();  // JS references are freed here, on the JS thread, not where the job dies
  }

  // An exception thrown by onEpochEnd stopped training; it is what train() rejects with. Moved out, so
  // that its reference is freed here on the JS thread.
  std::optional<Napi::Error> rejection() override { return std::exchange(callback_error_, std::nullopt); }

  Napi::Value result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array epochs = Napi::Array::New(env, result_.epochs.size());
    for (size_t i = 0; i < result_.epochs.size(); ++i) {
      epochs.Set(static_cast<uint32_t>(i), to_js(env, result_.epochs[i]));
    }
    out.Set("epochs", epochs);
    out.Set("stopped", Napi::Boolean::New(env, result_.stopped));
    return out;
  }

 private:
  Napi::ObjectReference owner_;  // keeps the JS model object (and so the handle) alive while training
  at::Tensor inputs_, labels_;
  model::TrainConfig config_;
  model::TrainResult result_;
  std::optional<Napi::Error> callback_error_;
  bool stopped_;  // an abort that came before train() was called
  bool reports_;  // there is an epoch callback to call (its thread-safe function has a JS function)
};

}  // namespace

Napi::Promise start_inference(Napi::Env env, std::shared_ptr<Session> session, InferenceKind kind,
                              Napi::Object inputs_owner, at::Tensor inputs, at::Tensor labels, int64_t batch_size) {
  auto job = std::make_shared<InferenceJob>(env, std::move(session), kind, inputs_owner, std::move(inputs),
                                            std::move(labels), batch_size);
  return launch(env, job, Napi::Function(), "torch-moe:inference", ComputeThread::JobKind::kShort);
}

Napi::Promise start_training(Napi::Env env, std::shared_ptr<Session> session, Napi::Object owner,
                             at::Tensor inputs, at::Tensor labels, model::TrainConfig config,
                             Napi::Function on_epoch, bool stopped) {
  config.shuffle_seed = session->model->config().seed * 1000003ULL + session->trainer.train_calls;
  auto job = std::make_shared<TrainJob>(env, std::move(session), owner, std::move(inputs), std::move(labels), config,
                                        stopped, !on_epoch.IsEmpty());
  return launch(env, job, on_epoch, "torch-moe:train", ComputeThread::JobKind::kLong);
}

}  // namespace moe::binding
