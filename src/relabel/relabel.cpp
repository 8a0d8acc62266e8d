#include "relabel/relabel.h"

#include <algorithm>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "core/clock.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/read_ahead.h"
#include "core/runtime.h"
#include "core/stage_output.h"
#include "core/worker.h"
#include "engine/precision.h"
#include "labels/image_set.h"
#include "labels/label_pool.h"
#include "labels/label_store.h"
#include "labels/replay.h"
#include "models/checkpoint.h"

namespace lpld::relabel {

namespace {

// The store's header: the views' parameters, the pool, and what the labels were made from.
labels::LabelHeader make_header(const RelabelConfig& config, const labels::ImageSet& set,
                                const models::Checkpoint& ck) {
  check_arg(set.num_classes() == ck.meta.num_classes, "--images",
            config.images + " has " + std::to_string(set.num_classes()) + " classes, the teacher " +
                std::to_string(ck.meta.num_classes));
  check_arg(set.channels() == ck.meta.channels, "--images",
            config.images + " has " + std::to_string(set.channels()) +
                "-channel images, the teacher takes " + std::to_string(ck.meta.channels));
  labels::LabelHeader h;
  h.num_images = set.size();
  h.num_classes = ck.meta.num_classes;
  h.channels = ck.meta.channels;
  h.image_size = ck.meta.image_size;
  h.epochs = config.epochs;
  h.views = config.views;
  h.steps_kept = labels::steps_for_ratio(config.prune_ratio, h.total_steps());
  h.prune_ratio = config.prune_ratio;
  h.codec = {config.topk, config.logits};
  h.views_stored = config.store_views;
  h.image_labels = config.image_labels;
  h.replay_version = labels::kReplayVersion;
  h.seed = config.seed;
  h.norm = ck.meta.norm;
  h.images = set.paths();
  h.labels = set.labels();
  h.image_set_hash = set.hash();
  h.teacher_hash = hash_file(config.teacher);
  h.blas = blas_name();  // logits depend on it in their last bits (core/runtime.h)
  h.config = config.identity();
  check_arg(h.steps_kept >= 1, "--prune-ratio",
            fmt::format("{} keeps no step of {}", config.prune_ratio, h.total_steps()));
  return h;
}

// A forward's worth of label steps: their plans and their images (read from the image cache).
struct StepGroup {
  std::vector<labels::StepPlan> plans;
  std::vector<torch::Tensor> images;
};

// The forward groups of steps this process labels: the one-process run's groups (a
// forward's numerics may depend on its batch size, so grouping steps the same way keeps every
// logit bit-identical), group g on rank g mod N, less those whose records a killed run left
// intact in the partial store.
struct Share {
  std::vector<int64_t> todo;  // first step of each group still to label
  int64_t steps_todo = 0, steps_intact = 0;
};
Share groups_to_label(labels::LabelStoreWriter& writer, int64_t group, const Dist* dist) {
  const int64_t steps = writer.header().steps_kept;
  Share share;
  for (int64_t s0 = 0, g = 0; s0 < steps; s0 += group, ++g) {
    if (dist && g % dist->world_size() != dist->rank()) continue;
    bool done = true;
    for (int64_t s = s0; s < std::min(steps, s0 + group) && done; ++s) done = writer.intact(s);
    (done ? share.steps_intact : share.steps_todo) += std::min(steps, s0 + group) - s0;
    if (!done) share.todo.push_back(s0);
  }
  return share;
}

// The views of a group rendered on `device` and the teacher's logits for them (float, on the
// CPU), under autocast (engine/precision.h). Thread-safe: the CPU path runs one per core.
torch::Tensor forward_group(const StepGroup& g, models::ClassifierImpl& teacher,
                            const labels::LabelHeader& h, const data::NormTensors& norm,
                            const torch::Device& device, const engine::Precision& precision) {
  torch::NoGradGuard no_grad;  // (per thread, as autocast is)
  std::vector<torch::Tensor> batches;
  for (size_t k = 0; k < g.plans.size(); ++k)
    batches.push_back(labels::render_step(g.images[k].to(device, /*non_blocking=*/true), norm,
                                          g.plans[k], h.image_size));
  engine::AutocastGuard autocast(device, precision.amp);
  torch::Tensor logits = teacher.forward(engine::in_layout(torch::cat(batches), precision));
  return logits.to(torch::kFloat).to(torch::kCPU);
}

// The forwards' logits on their way into the store: counted for the progress, then written
// on one helper thread behind the forwards, a few groups deep (waiting for each write before
// the next forward left the forwards idle whenever the writer thread was not scheduled at
// once). Thread-safe.
class RecordQueue {
 public:
  RecordQueue(labels::LabelStoreWriter& writer, Progress& progress)
      : writer_(writer), progress_(progress) {}
  void push(const StepGroup& g, const torch::Tensor& logits) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (writes_.size() >= 4) writes_.front().get(), writes_.pop_front();
    // Counted before the write is queued, so a progress log never lags the store (a kill
    // between a write and its update would show more on disk than was logged); it leads it
    // by at most the 4 groups queued behind the writer.
    for (const auto& p : g.plans) views_ += static_cast<int64_t>(p.indices.size());
    steps_ += static_cast<int64_t>(g.plans.size());
    progress_.update(steps_);
    writes_.push_back(writing_.submit([this, logits, plans = g.plans] {
      int64_t row = 0;
      for (const auto& p : plans) {
        const int64_t n = static_cast<int64_t>(p.indices.size());
        writer_.write(p.step, logits.narrow(0, row, n), p);
        row += n;
      }
    }));
  }
  // Waits for every write; returns the views labelled.
  int64_t finish() {
    for (auto& w : writes_) w.get();
    writes_.clear();
    return views_;
  }

 private:
  labels::LabelStoreWriter& writer_;
  Progress& progress_;
  std::mutex mutex_;
  int64_t views_ = 0, steps_ = 0;
  std::deque<std::future<void>> writes_;  // in flight, oldest first
  SerialWorker writing_;                  // (last: it finishes before the rest goes)
};

// A group's plans and images, read from the image cache.
StepGroup prepare_group(const labels::ImageSet& set, labels::StepPlanner& planner,
                        const labels::LabelHeader& h, int64_t s0, int64_t group,
                        const torch::Device& device) {
  StepGroup g;
  for (int64_t s = s0; s < std::min(h.steps_kept, s0 + group); ++s) {
    g.plans.push_back(planner.plan(s));
    g.images.push_back(set.read(g.plans.back().indices));
    // Pinned, so the copy to the device can run without blocking the forwards (CUDA only).
    if (device.is_cuda()) g.images.back() = g.images.back().pin_memory();
  }
  return g;
}

// What label_groups_on_device and label_groups_on_cores need besides the groups.
struct LabelJob {
  const labels::ImageSet& set;
  models::Checkpoint& ck;
  labels::LabelStoreWriter& writer;
  int64_t group;
  torch::Device device;
  engine::Precision precision;
};

// On a GPU: the forwards on this thread, the next group's plans and images read ahead on one
// helper thread, the records written behind on another.
int64_t label_groups_on_device(const LabelJob& job, const std::vector<int64_t>& todo,
                               Progress& progress) {
  const labels::LabelHeader& h = job.writer.header();
  const data::NormTensors norm(h.norm, job.device);
  labels::StepPlanner planner(h);  // used by one planning thread at a time
  RecordQueue records(job.writer, progress);
  SerialWorker planning;  // (after what its tasks use, so it finishes first on the way out)
  ReadAhead<StepGroup> ahead(planning, static_cast<int64_t>(todo.size()), 1, [&](int64_t i) {
    return prepare_group(job.set, planner, h, todo[static_cast<size_t>(i)], job.group, job.device);
  });
  while (auto g = ahead.next())
    records.push(*g, forward_group(*g, *job.ck.model, h, norm, job.device, job.precision));
  return records.finish();
}

// On the CPU: one forward per core, each on one thread (at::set_num_threads(1) on each worker
// sets that thread's OpenMP and MKL thread counts alone), so each group's logits are a
// single-threaded forward's whatever --threads is (the store is bitwise the same at any thread
// count), and a small forward does not pay for splitting each of its ops over the cores
// (bench/results/relabel-cores.md).
int64_t label_groups_on_cores(const LabelJob& job, const std::vector<int64_t>& todo,
                              Progress& progress) {
  const labels::LabelHeader& h = job.writer.header();
  const data::NormTensors norm(h.norm, job.device);
  labels::StepPlanner planner(h);
  RecordQueue records(job.writer, progress);
  std::mutex mutex;  // the planner, the next group, the first error
  size_t next = 0;
  std::exception_ptr error;
  auto work = [&] {
    {
      std::lock_guard<std::mutex> lock(mutex);  // (one at a time: it resets libtorch's pools)
      at::set_num_threads(1);
    }
    try {
      while (true) {
        StepGroup g;
        {
          std::lock_guard<std::mutex> lock(mutex);
          if (next == todo.size() || error) return;
          g = prepare_group(job.set, planner, h, todo[next++], job.group, job.device);
        }
        records.push(g, forward_group(g, *job.ck.model, h, norm, job.device, job.precision));
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
    }
  };
  const int threads = at::get_num_threads();
  std::vector<std::thread> workers;
  for (int t = 0; t < std::min<int64_t>(threads, static_cast<int64_t>(todo.size())); ++t)
    workers.emplace_back(work);
  for (auto& w : workers) w.join();
  at::set_num_threads(threads);  // (the count is also kept process-wide by libtorch)
  const int64_t views = records.finish();
  if (error) std::rethrow_exception(error);
  return views;
}

// The fallback table (--image-labels): the teacher's logits for every image's whole view (no
// crop, flip or CutMix), `forward` images at a time, on this thread; on the CPU single-threaded
// as label_groups_on_cores' forwards are, so the table too is the same bytes at any --threads.
torch::Tensor image_logits(const LabelJob& job, int64_t forward) {
  struct OneThread {  // restores the thread count however the forwards end
    bool on;
    int threads = at::get_num_threads();
    explicit OneThread(bool on_) : on(on_) {
      if (on) at::set_num_threads(1);
    }
    ~OneThread() {
      if (on) at::set_num_threads(threads);
    }
  } one_thread(job.device.is_cpu());
  const labels::LabelHeader& h = job.writer.header();
  const data::NormTensors norm(h.norm, job.device);
  std::vector<torch::Tensor> out;
  for (int64_t i0 = 0; i0 < h.num_images; i0 += forward) {
    StepGroup g;
    g.plans.emplace_back();
    auto& plan = g.plans.back();
    for (int64_t i = i0; i < std::min(h.num_images, i0 + forward); ++i) plan.indices.push_back(i);
    plan.views.assign(plan.indices.size(), data::View{});  // the whole image, not flipped
    g.images.push_back(job.set.read(plan.indices));
    out.push_back(forward_group(g, *job.ck.model, h, norm, job.device, job.precision));
  }
  return torch::cat(out);
}

// One process's part of a relabel run (`dist` null: the whole run). Rank 0 owns the store
// file; the other ranks write their records into it (docs/distributed.md).
RelabelResult relabel_part(const RelabelConfig& requested, Progress& progress, Dist* dist) {
  const auto start = Clock::now();
  const torch::Device device = parse_device(requested.device);
  auto ck = models::load_checkpoint(requested.teacher, device);
  std::string note;
  const RelabelConfig config = resolve_recipe(requested, ck.meta.image_size, "relabel", &note);
  if (!note.empty()) progress.message(note);
  const labels::ImageSet set = labels::ImageSet::open(config.images);
  const labels::LabelHeader h = make_header(config, set, ck);
  // Several label batches per forward: the teacher is frozen, so batches are independent
  // and a larger forward uses the cores better (bench/relabel measures the choice).
  // On CPU, large forwards lose (bench/results/relabel.md: 320 images is clearly slowest);
  // among 20, 40 and 100 the single runs there differ by less than relabel's run-to-run
  // spread (results/relabel-spread.md), so 40 stays. On a GPU, fill it.
  const int64_t forward =
      config.forward_batch > 0 ? config.forward_batch : (device.is_cuda() ? 1024 : 40);
  const int64_t group = std::max<int64_t>(1, forward / h.views.batch_size);

  // The store's partial file is its resume state: a killed run's records of the same header
  // are kept, another header's are discarded (labels/label_store.h).
  StageOutput output("relabel", config.out, StageOutput::Kind::kFile, "partial", h.to_json(), dist);
  using Writer = labels::LabelStoreWriter;
  std::unique_ptr<Writer> writer;
  if (output.writer()) writer = std::make_unique<Writer>(config.out, h, Writer::Role::kOwnerLocked);
  if (dist) dist->barrier("relabel: waiting for rank 0 to open " + config.out + ".partial");
  if (!writer) writer = std::make_unique<Writer>(config.out, h, Writer::Role::kJoin);
  const Share share = groups_to_label(*writer, group, dist);
  if (share.steps_intact > 0)
    progress.message(fmt::format("relabel: resuming {}: {} steps already there, {} to label",
                                 config.out, share.steps_intact, share.steps_todo));
  const double setup_seconds = seconds_since(start);
  progress.start("relabel", share.steps_todo, "step");
  const auto precision = engine::Precision{config.amp, config.channels_last};
  if (precision.channels_last) engine::to_channels_last(*ck.model);
  const LabelJob job{set, ck, *writer, group, device, precision};
  if (h.image_labels && output.writer() && !writer->image_labels_intact()) {
    progress.message(fmt::format("relabel: labelling the {} images' whole views (--image-labels)",
                                 h.num_images));
    writer->write_image_labels(image_logits(job, forward));
  }
  int64_t views = device.is_cpu() ? label_groups_on_cores(job, share.todo, progress)
                                  : label_groups_on_device(job, share.todo, progress);
  progress.finish();
  if (dist) {
    writer->sync();
    std::vector<torch::Tensor> v{torch::tensor({views}, torch::kInt64)};
    dist->all_reduce_sum(v, "relabel: waiting for the other ranks' records");
    views = v[0].item<int64_t>();
  }
  output.publish([&] { writer->commit(); });
  writer.reset();

  RelabelResult r;
  r.recipe = config.recipe;
  r.total_steps = h.total_steps();
  r.steps_kept = h.steps_kept;
  r.images = h.num_images;
  r.labelled_views = views;
  r.seconds = seconds_since(start);
  r.setup_seconds = setup_seconds;
  r.views_per_second = r.seconds > 0 ? views / r.seconds : 0;
  labels::LabelStore store(config.out);
  r.label_bytes = store.file_bytes();
  r.logit_bytes = store.logit_bytes();
  r.metadata_bytes = r.label_bytes - r.logit_bytes;
  r.bytes = store.bytes_by_part();
  r.image_bytes = set.bytes();
  r.out = config.out;
  return r;
}

}  // namespace

RelabelResult relabel(const RelabelConfig& config, Progress& progress) {
  config.validate();
  return run_distributed(config.device,
                         [&](Dist* dist) { return relabel_part(config, progress, dist); });
}

}  // namespace lpld::relabel
