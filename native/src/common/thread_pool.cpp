// The process-wide thread pool behind parallel_for.
//
// A job is a range cut into fixed chunks; whoever takes part (the caller and any idle workers) claims chunks with an
// atomic counter until none are left. The caller always takes part, so a job finishes even when every worker is busy
// with other jobs (several libuv threads may call in at once) or when a job is started from inside another job.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "tessera/runtime.h"

namespace tessera {
namespace {

struct Job {
  Job(std::size_t n_, std::size_t grain_, ChunkFn body_) : body(body_), n(n_), grain(grain_) {
    chunks = (n + grain - 1) / grain;
  }
  ChunkFn body;
  std::size_t n, grain, chunks = 0;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  // Guarded by the pool's mutex:
  std::size_t max_helpers = 0;       // workers allowed to join (slots 1..max_helpers)
  std::size_t joined = 0;            // workers that joined so far; the next one gets slot joined + 1
  std::size_t active = 0;            // workers inside work_on()
  std::condition_variable finished;  // notified when `active` drops to zero
};

void work_on(Job& job, std::size_t slot) noexcept {
  for (;;) {
    const std::size_t c = job.next.fetch_add(1, std::memory_order_relaxed);
    if (c >= job.chunks) return;
    const std::size_t begin = c * job.grain;
    const std::size_t end = std::min(job.n, begin + job.grain);
    try {
      job.body(begin, end, slot);
    } catch (...) {
      job.failed.store(true, std::memory_order_relaxed);
    }
  }
}

class Pool {
 public:
  static Pool& instance() {
    // Never destroyed: at process exit a worker may still be finishing a job for a thread that exit() does not wait
    // for (libuv's), and joining or freeing under it would be worse than leaving the OS to reclaim everything.
    static Pool* pool = new Pool();
    return *pool;
  }

  std::size_t threads() {
    std::lock_guard<std::mutex> lk(mutex_);
    return threads_;
  }

  Status resize(std::size_t threads) {
    std::lock_guard<std::mutex> lk(mutex_);
    threads_ = threads;
    return started_ ? match_workers_locked() : Status::ok;
  }

  Status run(std::size_t n, std::size_t grain, ChunkFn body, std::size_t max_slots) {
    Job job(n, std::max<std::size_t>(grain, 1), body);
    std::size_t helpers = 0;
    {
      std::lock_guard<std::mutex> lk(mutex_);
      if (!started_) {
        started_ = true;
        if (match_workers_locked() != Status::ok) workers_.clear();  // run on fewer threads rather than fail
      }
      helpers = std::min({workers_.size(), job.chunks - 1, max_slots - 1});
      job.max_helpers = helpers;
      if (helpers > 0) jobs_.push_back(&job);
    }
    for (std::size_t i = 0; i < helpers; ++i) wake_.notify_one();
    work_on(job, 0);
    if (helpers > 0) {
      std::unique_lock<std::mutex> lk(mutex_);
      remove_locked(&job);
      job.finished.wait(lk, [&] { return job.active == 0; });
    }
    return job.failed.load(std::memory_order_relaxed) ? Status::internal : Status::ok;
  }

 private:
  struct Worker {
    std::thread thread;
    bool retire = false;  // guarded by the pool's mutex
  };

  Pool() : threads_(std::max(1u, std::thread::hardware_concurrency())) {}

  // The pool keeps threads_ - 1 workers: the caller of each job is the remaining thread.
  Status match_workers_locked() {
    const std::size_t want = threads_ - 1;
    while (workers_.size() > want) {
      std::shared_ptr<Worker> w = workers_.back();
      workers_.pop_back();
      w->retire = true;
      w->thread.detach();  // it leaves after the job in hand; joining here could block the event loop
    }
    wake_.notify_all();
    try {
      while (workers_.size() < want) {
        auto w = std::make_shared<Worker>();
        w->thread = std::thread([this, w] { loop(*w); });
        workers_.push_back(std::move(w));
      }
    } catch (...) {
      return Status::out_of_memory;  // the OS refused a thread: keep those we have
    }
    return Status::ok;
  }

  void remove_locked(Job* job) {
    auto it = std::find(jobs_.begin(), jobs_.end(), job);
    if (it != jobs_.end()) jobs_.erase(it);
  }

  void loop(Worker& self) {
    std::unique_lock<std::mutex> lk(mutex_);
    for (;;) {
      wake_.wait(lk, [&] { return self.retire || !jobs_.empty(); });
      if (self.retire) return;
      Job* job = jobs_.front();
      ++job->active;
      const std::size_t slot = ++job->joined;
      if (job->joined == job->max_helpers) jobs_.pop_front();  // full: later workers look at the next job
      lk.unlock();
      work_on(*job, slot);
      lk.lock();
      remove_locked(job);  // every chunk is claimed: nobody else should join it
      if (--job->active == 0) job->finished.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job*> jobs_;
  std::vector<std::shared_ptr<Worker>> workers_;
  std::size_t threads_;
  bool started_ = false;  // workers start with the first parallel job, so loading the addon starts no threads
};

}  // namespace

std::size_t thread_count() noexcept { return Pool::instance().threads(); }

Status set_thread_count(std::size_t threads) noexcept {
  if (threads < 1 || threads > kMaxThreads) return Status::invalid_argument;
  return Pool::instance().resize(threads);
}

Status parallel_for(std::size_t n, std::size_t grain, ChunkFn body, std::size_t max_slots) noexcept {
  if (n == 0) return Status::ok;
  if (grain == 0) grain = 1;
  if (n <= grain || max_slots <= 1) {  // one chunk or one slot: no hand-off
    try {
      for (std::size_t begin = 0; begin < n; begin += grain) body(begin, std::min(n, begin + grain), 0);
    } catch (...) {
      return Status::internal;
    }
    return Status::ok;
  }
  try {
    return Pool::instance().run(n, grain, body, max_slots);
  } catch (...) {  // std::system_error from a mutex: never let it cross into Node
    return Status::internal;
  }
}

std::size_t slots_for(std::size_t n, std::size_t grain) noexcept {
  const std::size_t chunks = grain == 0 ? n : (n + grain - 1) / grain;
  return std::max<std::size_t>(1, std::min(thread_count(), chunks));
}

std::size_t grain_for_bytes(std::size_t bytes_per_item, std::size_t bytes_per_chunk) noexcept {
  return std::max<std::size_t>(1, bytes_per_chunk / std::max<std::size_t>(1, bytes_per_item));
}

}  // namespace tessera
