// A small persistent thread pool: layers are short (often well under a millisecond), so spawning
// threads per layer would cost more than the work; the workers sleep between parallel_for calls.
#pragma once

#include <condition_variable>
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

  // Runs fn(task, thread) for every task in [0, tasks) and returns when all are done. Thread t
  // takes the contiguous range [t·tasks/size, (t+1)·tasks/size): neighbouring tasks (adjacent
  // rows or channels) stay on one core, and `thread` indexes per-thread scratch memory.
  void parallel_for(int tasks, const std::function<void(int task, int thread)>& fn);

 private:
  void worker(int index);
  void run_range(int thread);

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(int, int)>* job_ = nullptr;
  int tasks_ = 0;
  long generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

}  // namespace mpdet::cpu
