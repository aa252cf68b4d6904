// The process's distributed group, from JS: initDistributed (rendezvous off the JS thread), its info, and
// destroyDistributed. Training with { distributed: true } uses the group made here.
#pragma once
#include <napi.h>

namespace moe::binding {

// Adds initDistributed, destroyDistributed and distributedBuilt to the module's exports.
void register_distributed(Napi::Env env, Napi::Object exports);

}  // namespace moe::binding
