#include "errors.h"

#include <c10/util/Exception.h>

#include <new>

#include "../dist/group.h"

namespace moe::binding {

NativeError capture_current_exception() {
  try {
    throw;
  } catch (const c10::TypeError& e) {
    return {ErrorKind::kTypeError, e.what_without_backtrace(), ""};
  } catch (const c10::ValueError& e) {
    return {ErrorKind::kRangeError, e.what_without_backtrace(), ""};
  } catch (const c10::IndexError& e) {
    return {ErrorKind::kRangeError, e.what_without_backtrace(), ""};
  } catch (const c10::Error& e) {
    return {ErrorKind::kError, e.what_without_backtrace(), ""};
  } catch (const dist::DistributedError& e) {
    return {ErrorKind::kError, e.what(), "ERR_TORCH_MOE_DISTRIBUTED"};
  } catch (const std::bad_alloc&) {
    return {ErrorKind::kError, "out of memory", "ERR_TORCH_MOE_OOM"};
  } catch (const std::exception& e) {
    return {ErrorKind::kError, e.what(), ""};
  } catch (...) {
    return {ErrorKind::kError, "unknown native error", ""};
  }
}

Napi::Error to_js_error(Napi::Env env, const NativeError& error) {
  Napi::Error js;
  switch (error.kind) {
    case ErrorKind::kTypeError: js = Napi::TypeError::New(env, error.message); break;
    case ErrorKind::kRangeError: js = Napi::RangeError::New(env, error.message); break;
    default: js = Napi::Error::New(env, error.message); break;
  }
  if (!error.code.empty()) js.Set("code", Napi::String::New(env, error.code));
  return js;
}

void throw_js(Napi::Env env, ErrorKind kind, const std::string& message, const std::string& code) {
  throw to_js_error(env, NativeError{kind, message, code});
}

}  // namespace moe::binding
