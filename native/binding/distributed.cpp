#include "distributed.h"

#include <chrono>
#include <optional>
#include <string>

#include "../dist/group.h"
#include "errors.h"

namespace moe::binding {
namespace {

// The rendezvous blocks until every rank has joined (up to the timeout): it runs on libuv's pool, not on
// the compute thread, which other models of this process may be using.
class InitWorker : public Napi::AsyncWorker {
 public:
  InitWorker(Napi::Env env, dist::GroupOptions options)
      : Napi::AsyncWorker(env, "torch-moe:initDistributed"), deferred_(Napi::Promise::Deferred::New(env)),
        options_(std::move(options)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      group_ = dist::create_group(options_);
    } catch (...) {
      error_ = capture_current_exception();
    }
  }
  void OnOK() override {
    if (error_) {
      deferred_.Reject(to_js_error(Env(), *error_).Value());
      return;
    }
    dist::set_default_group(group_);
    deferred_.Resolve(Env().Undefined());  // lib/ knows the settings it asked for
  }

 private:
  Napi::Promise::Deferred deferred_;
  dist::GroupOptions options_;
  std::shared_ptr<dist::Group> group_;
  std::optional<NativeError> error_;
};

// initDistributed({ masterAddr, masterPort, rank, worldSize, timeoutMs, backend }): lib/ has validated it.
Napi::Value InitDistributed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw_js(env, ErrorKind::kTypeError, "Expected an options object");
  if (dist::default_group()) {
    throw_js(env, ErrorKind::kError, "this process already joined a distributed group; call destroyDistributed() first");
  }
  const Napi::Object o = info[0].As<Napi::Object>();
  auto number = [&](const char* key) {
    if (!o.Get(key).IsNumber()) throw_js(env, ErrorKind::kTypeError, std::string("Expected a number for ") + key);
    return o.Get(key).As<Napi::Number>().Int64Value();
  };
  auto text = [&](const char* key) {
    if (!o.Get(key).IsString()) throw_js(env, ErrorKind::kTypeError, std::string("Expected a string for ") + key);
    return o.Get(key).As<Napi::String>().Utf8Value();
  };
  dist::GroupOptions options;
  options.master_addr = text("masterAddr");
  options.port = static_cast<int>(number("masterPort"));
  options.rank = static_cast<int>(number("rank"));
  options.world_size = static_cast<int>(number("worldSize"));
  options.timeout = std::chrono::milliseconds(number("timeoutMs"));
  options.backend = text("backend");
  auto* worker = new InitWorker(env, options);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// Leaving the group releases this thread's reference; the last one tears Gloo down, which after a failed
// collective may wait for the work still queued to time out. So the release runs on libuv's pool, and
// the promise settles once it is done (a train job still holding the group releases it later, on the
// compute thread).
class ReleaseWorker : public Napi::AsyncWorker {
 public:
  ReleaseWorker(Napi::Env env, std::shared_ptr<dist::Group> group)
      : Napi::AsyncWorker(env, "torch-moe:destroyDistributed"), deferred_(Napi::Promise::Deferred::New(env)),
        group_(std::move(group)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override { group_.reset(); }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<dist::Group> group_;
};

Napi::Value DestroyDistributed(const Napi::CallbackInfo& info) {
  auto* worker = new ReleaseWorker(info.Env(), dist::take_default_group());
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// distributedTraffic(): what this process's group has handed to the collectives (null without a group).
Napi::Value DistributedTraffic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<dist::Group> group = dist::default_group();
  if (!group) return env.Null();
  const dist::Traffic t = group->traffic();
  Napi::Object o = Napi::Object::New(env);
  o.Set("collectives", Napi::Number::New(env, static_cast<double>(t.collectives)));
  o.Set("allReduceBytes", Napi::Number::New(env, static_cast<double>(t.all_reduce_bytes)));
  o.Set("allToAllBytes", Napi::Number::New(env, static_cast<double>(t.all_to_all_bytes)));
  o.Set("otherBytes", Napi::Number::New(env, static_cast<double>(t.other_bytes)));
  return o;
}

}  // namespace

void register_distributed(Napi::Env env, Napi::Object exports) {
  exports.Set("initDistributed", Napi::Function::New(env, InitDistributed));
  exports.Set("destroyDistributed", Napi::Function::New(env, DestroyDistributed));
  exports.Set("distributedTraffic", Napi::Function::New(env, DistributedTraffic));
  exports.Set("distributedBuilt", Napi::Boolean::New(env, dist::distributed_built()));
}

}  // namespace moe::binding
