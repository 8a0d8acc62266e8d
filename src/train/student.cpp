#include "train/student.h"

#include <filesystem>
#include <map>
#include <numeric>

#include "core/clock.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/safetensors.h"
#include "core/stage_output.h"
#include "data/batches.h"
#include "engine/data_parallel.h"
#include "engine/evaluate.h"
#include "engine/schedule.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "train/epoch.h"
#include "train/inputs.h"
#include "train/rule_pool.h"
#include "train/run_state.h"

namespace lpld::train {
namespace fs = std::filesystem;

namespace {

// A fresh student of `arch` for the labels' classes and image size (seeded by config.seed).
models::Checkpoint make_student(const TrainConfig& config, const TrainInputs& in,
                                const torch::Device& device) {
  const auto& h = in.header;
  torch::manual_seed(config.seed);
  models::Checkpoint student;
  student.meta.arch = config.arch;
  student.meta.num_classes = h.num_classes;
  student.meta.channels = h.channels;
  student.meta.image_size = h.image_size;
  student.meta.class_names = in.set.class_names();
  student.meta.norm = h.norm;
  student.meta.dataset = config.images;
  student.meta.seed = config.seed;
  student.model = models::make_model({config.arch, h.num_classes, h.channels, h.image_size});
  student.model->to(device);
  return student;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& config,
                                                        models::ClassifierImpl& model) {
  if (config.optimizer == Optimizer::adamw)
    return std::make_unique<torch::optim::AdamW>(
        model.parameters(),
        torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
  return std::make_unique<torch::optim::SGD>(model.parameters(),
                                             torch::optim::SGDOptions(config.lr)
                                                 .momentum(config.momentum)
                                                 .weight_decay(config.weight_decay));
}

// Evaluates on the real validation set and rewrites eval.jsonl with every evaluation so far.
// In a distributed run every rank evaluates its share; rank 0 writes the log.
engine::EvalResult evaluate_and_log(const TrainConfig& config, const TrainInputs& in,
                                    models::ClassifierImpl& model, const torch::Device& device,
                                    int64_t epoch, double seconds, json& evals, Progress& progress,
                                    Dist* dist) {
  auto ev = engine::evaluate(model, in.val, in.header.norm, in.header.image_size, device,
                             Progress::null(), 100, dist);
  if (dist && dist->rank() > 0) return ev;
  json line = {{"epoch", epoch}, {"top1", ev.top1}, {"top5", ev.top5}, {"seconds", seconds}};
  evals.push_back(line);
  std::string text;
  for (const auto& l : evals) text += l.dump() + "\n";
  write_file_atomic(config.out + "/eval.jsonl", text);
  progress.message("eval " + line.dump());
  return ev;
}

// What every epoch of a run shares (train/epoch.h), but the input thread.
EpochContext make_epoch_context(TrainInputs& in, models::ClassifierImpl& model,
                                torch::optim::Optimizer& optimizer, labels::StepPlanner& planner,
                                const data::NormTensors& norm, const torch::Device& device,
                                Dist* dist) {
  const TrainConfig& config = in.config;
  EpochContext ctx;
  ctx.read_ahead =
      static_cast<int>(config.read_ahead >= 0 ? config.read_ahead : (device.is_cuda() ? 2 : 0));
  ctx.model = &model;
  ctx.optimizer = &optimizer;
  ctx.inputs = &in;
  ctx.planner = &planner;
  ctx.norm = &norm;
  ctx.temperature_squared = config.temperature_squared;
  ctx.student_temperature = config.student_temperature > 0      ? config.student_temperature
                            : config.student_temperature_search ? 1.0
                                                                : 0.0;
  ctx.device = device;
  ctx.precision = engine::Precision{config.amp, config.channels_last};
  ctx.scaler = engine::GradScaler(config.amp, device);
  ctx.dist = dist;
  return ctx;
}

// The student checkpoint, its metadata recording the run.
void write_checkpoint(const TrainConfig& config, models::Checkpoint& student,
                      const TrainResult& result) {
  student.meta.info = {{"stage", "train"},
                       {"config", config_json(config)},
                       {"top1", result.top1},
                       {"top5", result.top5}};
  models::save_checkpoint(config.out + "/student.safetensors", student);
}

// A killed run's model, optimizer and counts, restored from its state file; none: a fresh run.
ResumeState resume(const std::string& state_path, const json& identity,
                   models::ClassifierImpl& model, torch::optim::Optimizer& optimizer,
                   Progress& progress) {
  if (!file_exists(state_path)) return {};
  ResumeState rs = load_resume_state(state_path, identity, model, optimizer);
  progress.message(fmt::format("resuming {} at epoch {}",
                               fs::path(state_path).parent_path().string(), rs.epochs_done));
  return rs;
}

// BatchNorm's running statistics of every rank, averaged (collective: all ranks call it at
// the same points) before the model is evaluated or saved.
void sync_buffers(const EpochContext& ctx) {
  if (ctx.dist) engine::average_buffers(*ctx.dist, *ctx.model, "train: BatchNorm statistics");
}

// Where a run keeps its resume state, and whether this process writes it (rank 0).
struct StateFile {
  const std::string& path;
  const json& identity;
  bool writer = true;
};

// A run's clocks: since it started, and its training time (a resumed run's before it too).
struct RunClock {
  Clock::time_point start, train_start;
  double prior_train_seconds = 0;
  double run_seconds() const { return seconds_since(start); }
  double train_seconds() const { return prior_train_seconds + seconds_since(train_start); }
};

// After an epoch but the last: an evaluation every eval_every epochs, the resume state every
// checkpoint_every (its training time read after the evaluation, which it includes).
void after_epoch(EpochContext& ctx, int64_t epochs_done, const StateFile& state,
                 int64_t images_seen, const RunClock& clock, TrainResult& result,
                 Progress& progress) {
  const TrainConfig& config = ctx.inputs->config;
  const bool eval = config.eval_every > 0 && epochs_done % config.eval_every == 0;
  const bool save = epochs_done % config.checkpoint_every == 0;
  if (eval || save) sync_buffers(ctx);
  if (eval) {
    evaluate_and_log(config, *ctx.inputs, *ctx.model, ctx.device, epochs_done, clock.run_seconds(),
                     result.evals, progress, ctx.dist);
    ctx.model->train();
  }
  if (save && state.writer)
    save_resume_state(state.path, state.identity, *ctx.model, *ctx.optimizer,
                      {epochs_done, result.steps, images_seen, clock.train_seconds(),
                       ctx.student_temperature, result.evals});
}

// LPQLD's dynamic CA after an epoch: the searched temperature, rank 0's in a distributed run
// (so that every rank trains the same model).
double next_student_temperature(const EpochContext& ctx) {
  const double t = search_student_temperature(ctx);
  if (!ctx.dist) return t;
  std::vector<torch::Tensor> v{torch::tensor({t}, torch::kFloat64)};
  ctx.dist->broadcast_from_rank0(v, "train: student temperature");
  return v[0].item<double>();
}

// One process's part of a training run (`dist` null: the whole run). In a distributed run
// every rank trains the same model on its slice of each step (engine/data_parallel.h); rank 0
// alone holds the output folder, evaluates and writes.
TrainResult train_part(const TrainConfig& requested, Progress& progress, Dist* dist) {
  const auto start = Clock::now();
  const torch::Device device = parse_device(requested.device);
  TrainInputs in = open_inputs(requested, device, progress);
  const TrainConfig& config = in.config;  // the recipe resolved, a store's views
  StageOutput output("train", config.out, StageOutput::Kind::kFolder, "train-state.safetensors",
                     run_identity(config, in), dist);
  if (auto done = output.finished()) return finished_run(*done);
  const std::string& state_path = output.state_path();
  const json& identity = output.identity();

  const auto& h = in.header;
  labels::StepPlanner planner(h);
  TrainResult result;
  result.recipe = config.recipe;
  result.pool_steps = in.pool.pool_steps;
  if (labels::is_rule_metric(config.metric))
    result.rule_pool = choose_rule_pool(config.metric, *in.store, planner, in.pool);
  models::Checkpoint student = make_student(config, in, device);
  auto& model = *student.model;
  if (config.channels_last) engine::to_channels_last(model);
  auto optimizer = make_optimizer(config, model);
  ResumeState rs = resume(state_path, identity, model, *optimizer, progress);
  result.steps = rs.steps, result.evals = rs.evals, result.resumed_from_epoch = rs.epochs_done;

  const data::NormTensors norm(h.norm, device);
  SerialWorker reader;  // the steps' input side, ahead of their compute (before ctx: outlives it)
  EpochContext ctx = make_epoch_context(in, model, *optimizer, planner, norm, device, dist);
  ctx.reader = &reader;
  if (rs.student_temperature > 0) ctx.student_temperature = rs.student_temperature;

  result.setup_seconds = seconds_since(start);
  const RunClock clock{start, Clock::now(), rs.train_seconds};
  const int64_t bpe = h.batches_per_epoch();
  progress.start(
      "train " + std::string(in.online() ? "online" : fmt::format("R={}", config.prune_ratio)),
      (config.epochs - rs.epochs_done) * bpe, "step");
  model.train();
  for (int64_t epoch = rs.epochs_done; epoch < config.epochs; ++epoch) {
    engine::set_lr(*optimizer, engine::cosine_lr(config.lr, static_cast<double>(epoch),
                                                 static_cast<double>(config.epochs),
                                                 static_cast<double>(config.warmup_epochs)));
    ctx.temperature = teacher_temperature(config, epoch + 1, config.epochs);
    const double loss = run_epoch(ctx, epoch_steps(in, epoch), rs.images_seen, result.steps);
    if (config.student_temperature_search) ctx.student_temperature = next_student_temperature(ctx);
    if (!std::isfinite(loss))
      throw std::runtime_error("train: loss is not finite at epoch " + std::to_string(epoch + 1) +
                               "; lower --lr");
    progress.update((epoch + 1 - result.resumed_from_epoch) * bpe,
                    fmt::format("epoch {} loss {:.4f}", epoch + 1, loss));
    if (epoch + 1 < config.epochs)
      after_epoch(ctx, epoch + 1, {state_path, identity, output.writer()}, rs.images_seen, clock,
                  result, progress);
  }
  progress.finish();
  sync_buffers(ctx);
  result.train_seconds = clock.train_seconds();
  result.images_per_second = result.train_seconds > 0 ? rs.images_seen / result.train_seconds : 0;
  result.input_wait_seconds = ctx.input_wait_seconds;
  auto ev = evaluate_and_log(config, in, model, device, config.epochs, seconds_since(start),
                             result.evals, progress, dist);
  result.top1 = ev.top1;
  result.top5 = ev.top5;
  result.seconds = seconds_since(start);
  output.publish([&] { write_checkpoint(config, student, result); }, result.to_json());
  return result;
}

}  // namespace

TrainResult train_student(const TrainConfig& config, Progress& progress) {
  config.validate();
  return run_distributed(config.device,
                         [&](Dist* dist) { return train_part(config, progress, dist); });
}

}  // namespace lpld::train
