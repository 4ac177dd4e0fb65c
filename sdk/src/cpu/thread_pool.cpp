#include "cpu/thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MPDET_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define MPDET_CPU_RELAX() asm volatile("yield")
#else
#define MPDET_CPU_RELAX() ((void)0)
#endif

namespace mpdet::cpu {

namespace {

// Spins before a worker sleeps (and before the caller yields while waiting): about 100 µs,
// longer than the gap between consecutive layers, much shorter than an idle period.
constexpr int kSpins = 2000;

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  threads_ = threads < 1 ? 1 : threads;
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::work(std::uint64_t generation, const std::function<void(int, int)>* job, int tasks,
                      int thread) {
  for (;;) {
    std::uint64_t c = claim_.load(std::memory_order_acquire);
    do {
      if (c >> 32 != generation || static_cast<int>(c & 0xFFFFFFFFu) >= tasks) return;
    } while (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel));
    (*job)(static_cast<int>(c & 0xFFFFFFFFu), thread);
    completed_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::parallel_for(int tasks, const std::function<void(int, int)>& fn) {
  if (tasks <= 0) return;
  if (threads_ == 1 || tasks == 1) {
    for (int task = 0; task < tasks; ++task) fn(task, 0);
    return;
  }
  std::uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    tasks_ = tasks;
    completed_.store(0, std::memory_order_relaxed);
    generation = (generation_.load(std::memory_order_relaxed) + 1) & 0xFFFFFFFFu;
    claim_.store(generation << 32, std::memory_order_release);
    generation_.store(generation, std::memory_order_release);
  }
  start_.notify_all();
  work(generation, &fn, tasks, 0);
  // Every task is claimed; wait for the ones other threads are still running.
  for (int spins = 0; completed_.load(std::memory_order_acquire) != tasks; ++spins) {
    if (spins < kSpins)
      MPDET_CPU_RELAX();
    else
      std::this_thread::yield();
  }
}

void ThreadPool::worker(int index) {
  std::uint64_t seen = 0;
  for (;;) {
    // Spin a little for the next parallel_for (the next layer), then sleep.
    for (int spins = 0; spins < kSpins && generation_.load(std::memory_order_acquire) == seen;
         ++spins)
      MPDET_CPU_RELAX();
    const std::function<void(int, int)>* job;
    int tasks;
    std::uint64_t generation;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock,
                  [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
      generation = seen = generation_.load(std::memory_order_acquire);
      job = job_;
      tasks = tasks_;
    }
    work(generation, job, tasks, index);
  }
}

}  // namespace mpdet::cpu
