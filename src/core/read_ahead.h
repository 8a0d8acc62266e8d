#pragma once
// Items 0..count-1 made by `make` on a helper thread, up to `depth` ahead of the consumer,
// handed out in order: the input side of a loop (reads, label decoding, host staging) runs
// while the loop computes (issue: an input pipeline that keeps up). Memory is O(depth) items.
// A `make` that throws has its exception rethrown by the next() that was to return its item.
//
// The helper is a SerialWorker the caller owns, so one thread serves a whole run rather than
// one per epoch (core/worker.h: a new thread costs libtorch a thread-pool set-up).
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <optional>

#include "core/worker.h"

namespace lpld {

template <typename T>
class ReadAhead {
 public:
  ReadAhead(SerialWorker& worker, int64_t count, int depth, std::function<T(int64_t)> make)
      : worker_(worker), make_(std::move(make)), count_(count), depth_(depth < 1 ? 1 : depth) {
    fill();
  }
  // Waits for what is still being made: `make` may use what the caller owns.
  ~ReadAhead() {
    for (auto& f : queue_)
      if (f.valid()) f.wait();
  }
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // The next item in order, or nullopt after the last.
  std::optional<T> next() {
    if (queue_.empty()) return std::nullopt;
    auto front = std::move(queue_.front());
    queue_.pop_front();
    fill();  // the next one is queued before this one is waited for
    return front.get();
  }

 private:
  void fill() {
    while (submitted_ < count_ && static_cast<int64_t>(queue_.size()) < depth_) {
      const int64_t i = submitted_++;
      queue_.push_back(worker_.submit([this, i] { return make_(i); }));
    }
  }

  SerialWorker& worker_;
  std::function<T(int64_t)> make_;
  int64_t count_, depth_, submitted_ = 0;
  std::deque<std::future<T>> queue_;
};

}  // namespace lpld
