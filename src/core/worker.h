#pragma once
// One long-lived thread that runs tasks in the order they are submitted (relabel's planner
// and writer run behind the teacher's forward on two of these). Written by hand: the
// standard library has no such queue, and the thread pools of the allowed libraries
// are bigger than this need. Not std::async, which starts a thread per call: libtorch
// sets up its thread state in each new thread that runs a parallel op, re-creating its
// pthreadpool (joining and spawning workers), about 10 ms a time (a quantized relabel
// ran 3x slower than an fp16 one for it).
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

namespace lpld {

class SerialWorker {
 public:
  SerialWorker() : thread_([this] { run(); }) {}
  // Runs what is queued, then joins.
  ~SerialWorker() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;

  // Queues `f`; its result (or exception) arrives through the future.
  template <typename F>
  auto submit(F f) -> std::future<decltype(f())> {
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto result = task->get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.emplace_back([task] { (*task)(); });
    }
    wake_.notify_one();
    return result;
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace lpld
