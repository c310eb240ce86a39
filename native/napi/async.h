// Runs a core kernel on a libuv worker thread and settles a Promise with a value prepared on the JS thread.
//
// Everything the kernel reads or writes is a typed array made or checked on the JS thread; the worker holds a
// reference to each of them until the Promise settles, so the garbage collector cannot free memory the kernel is
// still using. Callers must not mutate (or transfer) those arrays before the Promise settles.
#pragma once

#include <napi.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "tessera/status.h"

namespace tessera::napi {

class KernelWorker final : public Napi::AsyncWorker {
 public:
  using Kernel = std::function<Status()>;

  using Finish = std::function<void(Napi::Object result)>;
  using Settled = std::function<void()>;

  // Queues `kernel`; the returned Promise resolves to `result` (after `finish`, on the JS thread, may complete it
  // with what the kernel found) or rejects with the kernel's failure. `settled` runs on the JS thread just before
  // the Promise settles either way (an owner that refuses mutations while the kernel runs clears its flag there).
  static Napi::Promise Start(Napi::Env env, const char* name, Kernel kernel, Napi::Object result,
                             const std::vector<Napi::Object>& keep_alive, Finish finish = nullptr,
                             Settled settled = nullptr) {
    auto* worker = new KernelWorker(env, name, std::move(kernel), result, keep_alive);
    worker->finish_ = std::move(finish);
    worker->settled_ = std::move(settled);
    Napi::Promise promise = worker->deferred_.Promise();
    worker->Napi::AsyncWorker::Queue();  // libuv owns it from here; it deletes itself after OnOK / OnError
    return promise;
  }

 protected:
  void Execute() override {
    try {
      status_ = kernel_();
    } catch (...) {
      status_ = Status::internal;
    }
    if (status_ != Status::ok) SetError(name_ + ": " + status_name(status_));
  }

  void OnOK() override {
    if (settled_) settled_();
    Napi::Object result = result_.Value();
    if (finish_) finish_(result);
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& e) override {
    if (settled_) settled_();
    // Same classes as the synchronous path: a shape problem is a RangeError, anything else an Error.
    if (status_ == Status::invalid_argument)
      deferred_.Reject(Napi::RangeError::New(Env(), e.Message()).Value());
    else
      deferred_.Reject(e.Value());
  }

 private:
  KernelWorker(Napi::Env env, const char* name, Kernel kernel, Napi::Object result,
               const std::vector<Napi::Object>& keep_alive)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), kernel_(std::move(kernel)),
        result_(Napi::Persistent(result)), name_(name) {
    for (const Napi::Object& o : keep_alive) keep_alive_.push_back(Napi::Persistent(o));
  }

  Napi::Promise::Deferred deferred_;
  Kernel kernel_;
  Finish finish_;
  Settled settled_;
  Napi::ObjectReference result_;
  std::vector<Napi::ObjectReference> keep_alive_;
  std::string name_;
  Status status_ = Status::ok;
};

// A parsed call of a kernel with plain arguments: what the call returns (and its Promise resolves to), the arrays an
// async run keeps alive, and the kernel (a struct with `Status run() const`, all the worker thread sees).
template <class Kernel>
struct KernelCall {
  Napi::Object result;
  std::vector<Napi::Object> keep;
  Kernel kernel;
};

template <class Kernel>
using KernelParser = KernelCall<Kernel> (*)(const Napi::CallbackInfo&, const char*);

template <class Kernel, KernelParser<Kernel> Parse>
Napi::Value run_kernel(const Napi::CallbackInfo& info, const char* name) {
  KernelCall<Kernel> call = Parse(info, name);
  check(info.Env(), call.kernel.run(), name);
  return call.result;
}

template <class Kernel, KernelParser<Kernel> Parse>
Napi::Value start_kernel(const Napi::CallbackInfo& info, const char* name) {
  KernelCall<Kernel> call = Parse(info, name);
  return KernelWorker::Start(info.Env(), name, [k = call.kernel] { return k.run(); }, call.result, call.keep);
}

// Exports `name` (runs on the calling thread) and `name`Async (on a worker thread) for one kernel.
template <class Kernel, KernelParser<Kernel> Parse>
void export_kernel(Napi::Env env, Napi::Object exports, const char* name) {
  static const std::string sync_name = name, async_name = std::string(name) + "Async";
  exports.Set(sync_name, Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return run_kernel<Kernel, Parse>(i, sync_name.c_str()); }, sync_name));
  exports.Set(async_name, Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return start_kernel<Kernel, Parse>(i, async_name.c_str()); }, async_name));
}

}  // namespace tessera::napi
