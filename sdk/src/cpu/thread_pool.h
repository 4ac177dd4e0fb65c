// A small persistent thread pool: layers are short (often well under a millisecond), so spawning
// threads per layer would cost more than the work; the workers spin briefly, then sleep, between
// parallel_for calls.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mpdet::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads <= 0: one per hardware thread
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Runs fn(task, thread) for every task in [0, tasks) exactly once and returns when all are
  // done. Tasks are claimed one at a time from a shared counter by the caller (thread 0) and the
  // workers, so a worker the OS has not scheduled yet delays nothing: the caller takes the work.
  // With one thread (or one task) fn runs inline, with no synchronisation at all. `thread`
  // (< size()) indexes per-thread scratch memory.
  void parallel_for(int tasks, const std::function<void(int task, int thread)>& fn);

 private:
  void worker(int index);
  // Claims and runs tasks of generation `generation` until none is left.
  void work(std::uint64_t generation, const std::function<void(int, int)>* job, int tasks,
            int thread);

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_;
  const std::function<void(int, int)>* job_ = nullptr;  // guarded by mutex_
  int tasks_ = 0;                                       // guarded by mutex_
  std::atomic<std::uint64_t> generation_{0};
  // generation << 32 | next unclaimed task: a claim from a finished generation fails.
  std::atomic<std::uint64_t> claim_{0};
  std::atomic<int> completed_{0};
  bool stop_ = false;  // guarded by mutex_
};

}  // namespace mpdet::cpu
