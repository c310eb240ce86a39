// Running CUDA backend calls from the bindings: synchronously (throwing the backend's message) or on a libuv worker
// thread (a Promise that rejects with it). A bad argument is a RangeError; a CUDA error or device out-of-memory an
// Error that carries CUDA's text or the sizes.
#pragma once

#include <napi.h>

#include <functional>
#include <string>
#include <vector>

#include "args.h"
#include "tessera/cuda_retrieval.h"

namespace tessera::napi {

[[noreturn]] inline void throw_result(Napi::Env env, const cuda::Result& r, const char* name) {
  const std::string message = std::string(name) + ": " + r.message;
  if (r.status == Status::invalid_argument) throw_range(env, message);
  throw Napi::Error::New(env, message);
}

using DeviceWork = std::function<cuda::Result()>;

// Runs device work on a libuv worker thread; the Promise resolves to `result` or rejects with the work's message.
class CudaWorker final : public Napi::AsyncWorker {
 public:
  static Napi::Promise Start(Napi::Env env, const char* name, DeviceWork work, Napi::Value result,
                             const std::vector<Napi::Value>& keep) {
    auto* worker = new CudaWorker(env, name, std::move(work), result, keep);
    Napi::Promise promise = worker->deferred_.Promise();
    worker->Queue();  // libuv owns it from here; it deletes itself once settled
    return promise;
  }

 protected:
  void Execute() override {
    try {
      outcome_ = work_();
    } catch (...) {
      outcome_ = {Status::internal, "unexpected exception"};
    }
    if (!outcome_.ok()) SetError(name_ + ": " + outcome_.message);
  }
  void OnOK() override { deferred_.Resolve(held_.Value().Get("result")); }
  void OnError(const Napi::Error& e) override {
    if (outcome_.status == Status::invalid_argument) deferred_.Reject(Napi::RangeError::New(Env(), e.Message()).Value());
    else deferred_.Reject(e.Value());
  }

 private:
  CudaWorker(Napi::Env env, const char* name, DeviceWork work, Napi::Value result, const std::vector<Napi::Value>& keep)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), name_(name) {
    // One persistent object holds the result and every array the work reads or writes until the Promise settles.
    Napi::Object holder = Napi::Object::New(env);
    holder.Set("result", result);
    for (std::size_t i = 0; i < keep.size(); ++i) holder.Set(static_cast<uint32_t>(i), keep[i]);
    held_ = Napi::Persistent(holder);
  }

  Napi::Promise::Deferred deferred_;
  DeviceWork work_;
  std::string name_;
  Napi::ObjectReference held_;
  cuda::Result outcome_;
};

// Runs the work now (sync) or on a worker; returns `result` or a Promise of it.
inline Napi::Value dispatch(const Napi::CallbackInfo& info, bool async, const char* name, DeviceWork work, Napi::Value result,
                     const std::vector<Napi::Value>& keep) {
  if (async) return CudaWorker::Start(info.Env(), name, std::move(work), result, keep);
  const cuda::Result r = work();
  if (!r.ok()) throw_result(info.Env(), r, name);
  return result;
}

}  // namespace tessera::napi
