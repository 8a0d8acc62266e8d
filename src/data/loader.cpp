// BatchLoader: worker threads claim batches in order (at most `prefetch` ahead of the
// consumer), build them (decode, transform, stack) and park them in `ready`; next() hands
// them out strictly in order. A worker's exception is parked in place of its batch and
// rethrown by next() when that batch is due, so errors surface at the same point in the
// stream regardless of thread timing.
#include "data/loader.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"

namespace lpld::data {

struct BatchLoader::State {
  struct Result {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };

  std::shared_ptr<const Dataset> dataset;
  std::vector<std::vector<int64_t>> batches;
  std::vector<int64_t> offsets;  // stream position of each batch's first sample
  SampleTransform transform;
  int64_t prefetch = 1;
  int64_t min_side = 0;
  bool pin_memory = false;

  std::mutex mutex;
  std::condition_variable work_cv;   // workers: a batch may be claimed, or stop
  std::condition_variable ready_cv;  // consumer: a batch was parked
  int64_t next_claim = 0;            // guarded by mutex
  int64_t next_deliver = 0;          // guarded by mutex
  std::map<int64_t, Result> ready;   // guarded by mutex
  std::atomic<bool> stop{false};
  std::exception_ptr error;  // sticky once delivered
  std::vector<std::thread> workers;

  int64_t count() const { return static_cast<int64_t>(batches.size()); }

  // Builds batch b; returns nullopt if the loader is being destroyed meanwhile.
  std::optional<Batch> make(int64_t b) {
    torch::NoGradGuard no_grad;
    const auto& indices = batches[static_cast<size_t>(b)];
    const int64_t n = static_cast<int64_t>(indices.size());
    std::vector<torch::Tensor> outputs;
    outputs.reserve(indices.size());
    auto labels = torch::empty({n}, torch::kInt64);
    auto* lp = labels.data_ptr<int64_t>();
    for (int64_t j = 0; j < n; ++j) {
      if (stop.load()) return std::nullopt;
      const int64_t index = indices[static_cast<size_t>(j)];
      torch::Tensor image = dataset->image(index, min_side);
      torch::Tensor out = transform ? transform(image, offsets[static_cast<size_t>(b)] + j) : image;
      if (!outputs.empty() && out.sizes() != outputs.front().sizes()) {
        fail_file(dataset->source(index),
                  fmt::format("sample {} gives a {} tensor, the batch's first sample {}", index,
                              c10::str(out.sizes()), c10::str(outputs.front().sizes())));
      }
      outputs.push_back(std::move(out));
      lp[j] = dataset->label(index);
    }
    auto images = torch::stack(outputs);
    if (pin_memory) {
      images = images.pin_memory();
      labels = labels.pin_memory();
    }
    return Batch{images, labels, indices};
  }

  void work() {
    for (;;) {
      int64_t b = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_cv.wait(lock, [&] {
          return stop.load() || next_claim >= count() || next_claim < next_deliver + prefetch;
        });
        if (stop.load() || next_claim >= count()) return;
        b = next_claim++;
      }
      Result result;
      try {
        result.batch = make(b);
        if (!result.batch) return;  // stopping
      } catch (...) {
        result.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        ready[b] = std::move(result);
      }
      ready_cv.notify_all();
    }
  }
};

BatchLoader::BatchLoader(std::shared_ptr<const Dataset> dataset,
                         std::vector<std::vector<int64_t>> batches, SampleTransform transform,
                         LoaderOptions options)
    : state_(std::make_unique<State>()) {
  check_arg(dataset != nullptr, "BatchLoader", "no dataset");
  const int64_t size = dataset->size();
  int64_t position = 0;
  for (size_t b = 0; b < batches.size(); ++b) {
    check_arg(!batches[b].empty(), "BatchLoader", fmt::format("batch {} is empty", b));
    for (const int64_t i : batches[b]) {
      check_arg(i >= 0 && i < size, "BatchLoader",
                fmt::format("index {} in batch {} outside [0, {})", i, b, size));
    }
    state_->offsets.push_back(position);
    position += static_cast<int64_t>(batches[b].size());
  }
  state_->dataset = std::move(dataset);
  state_->batches = std::move(batches);
  state_->transform = std::move(transform);
  state_->prefetch = std::max(1, options.prefetch);
  state_->min_side = options.min_side;
  state_->pin_memory = options.pin_memory;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t workers =
      std::min<int64_t>(options.workers > 0 ? options.workers : cores, state_->count());
  for (int64_t t = 0; t < workers; ++t)
    state_->workers.emplace_back([s = state_.get()] { s->work(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  state_->work_cv.notify_all();
  for (auto& t : state_->workers) t.join();
}

std::optional<Batch> BatchLoader::next() {
  State& s = *state_;
  if (s.error) std::rethrow_exception(s.error);
  if (s.workers.empty()) {  // workers = 0: build batches on the calling thread
    if (s.next_deliver >= s.count()) return std::nullopt;
    try {
      return s.make(s.next_deliver++);
    } catch (...) {
      s.error = std::current_exception();
      throw;
    }
  }
  State::Result result;
  {
    std::unique_lock<std::mutex> lock(s.mutex);
    if (s.next_deliver >= s.count()) return std::nullopt;
    s.ready_cv.wait(lock, [&] { return s.ready.count(s.next_deliver) > 0; });
    auto it = s.ready.find(s.next_deliver);
    result = std::move(it->second);
    s.ready.erase(it);
    ++s.next_deliver;
  }
  s.work_cv.notify_all();
  if (result.error) {
    s.error = result.error;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      s.stop = true;  // no point building later batches
    }
    s.work_cv.notify_all();
    std::rethrow_exception(result.error);
  }
  return std::move(result.batch);
}

}  // namespace lpld::data
