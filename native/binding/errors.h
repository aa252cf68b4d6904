// One error funnel for the whole binding: every native exception becomes a JS Error, TypeError or
// RangeError whose message says what was wrong (libtorch's backtrace stripped). Nothing escapes as a crash.
#pragma once
#include <napi.h>

#include <string>

namespace moe::binding {

enum class ErrorKind { kError, kTypeError, kRangeError };

struct NativeError {
  ErrorKind kind = ErrorKind::kError;
  std::string message;
  std::string code;  // optional: set as error.code
};

// Call inside a catch block: classifies the exception in flight.
NativeError capture_current_exception();

Napi::Error to_js_error(Napi::Env env, const NativeError& error);

// Throws a JS exception (as a C++ Napi::Error) for the given kind.
[[noreturn]] void throw_js(Napi::Env env, ErrorKind kind, const std::string& message, const std::string& code = "");

// Runs fn on the JS thread; any native exception becomes the matching JS exception.
template <typename Fn>
auto guarded(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw to_js_error(env, capture_current_exception());
  }
}

}  // namespace moe::binding
