// Scheduling of the slow calls. Every job runs on the one compute thread (compute_thread.h) and settles
// its Promise on the JS thread through a ThreadSafeFunction, whose finaliser is the one place where the
// promise is settled and the job freed. Training reports epochs through the same function.
#pragma once
#include <napi.h>

#include <memory>

#include "session.h"

namespace moe::binding {

// inputs [n,in], labels [n] (may be undefined for predict) -> evaluate / routingStats / predict. inputs may
// view the memory of inputs_owner (a JS array), which the job keeps alive and reads only until it settles.
enum class InferenceKind { kEvaluate, kRoutingStats, kPredict, kPredictRouting };
Napi::Promise start_inference(Napi::Env env, std::shared_ptr<Session> session, InferenceKind kind,
                              Napi::Object inputs_owner, at::Tensor inputs, at::Tensor labels, int64_t batch_size);

// Queues training; on_epoch (may be empty) gets one metrics object per epoch. `stopped`: already asked to
// stop (an aborted signal), so that no step runs. Resolves with { epochs: [...], stopped }.
Napi::Promise start_training(Napi::Env env, std::shared_ptr<Session> session, Napi::Object owner,
                             at::Tensor inputs, at::Tensor labels, model::TrainConfig config,
                             Napi::Function on_epoch, bool stopped);

}  // namespace moe::binding
