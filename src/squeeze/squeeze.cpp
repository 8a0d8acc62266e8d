#include "squeeze/squeeze.h"

#include <filesystem>

#include "core/clock.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/stage_output.h"
#include "data/batches.h"
#include "engine/data_parallel.h"
#include "engine/evaluate.h"
#include "engine/optimizer_state.h"
#include "engine/precision.h"
#include "engine/schedule.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "squeeze/class_stats.h"
#include "squeeze/resume.h"

namespace lpld::squeeze {

namespace {

// The teacher to train: a fresh model of `arch` for the data, or the --init checkpoint.
models::Checkpoint open_teacher(const SqueezeConfig& config, const data::Dataset& train_set,
                                const torch::Device& device) {
  models::Checkpoint ck;
  if (!config.init.empty()) {
    ck = models::load_checkpoint(config.init, device);
    check_arg(ck.meta.num_classes == train_set.num_classes(), "--init",
              "checkpoint has " + std::to_string(ck.meta.num_classes) + " classes, the data " +
                  std::to_string(train_set.num_classes()));
  } else {
    ck.meta.arch = config.arch;
    ck.meta.num_classes = train_set.num_classes();
    ck.meta.channels = train_set.channels();
    ck.meta.image_size =
        config.image_size > 0 ? config.image_size : data::default_image_size(train_set);
    ck.meta.norm = config.norm.empty()
                       ? data::normalization_for(train_set)
                       : data::parse_normalization(config.norm, train_set.channels());
    ck.model = models::make_model(
        {ck.meta.arch, ck.meta.num_classes, ck.meta.channels, ck.meta.image_size});
    ck.model->to(device);
  }
  ck.meta.class_names = train_set.class_names();
  ck.meta.dataset = config.data;
  ck.meta.seed = config.seed;
  return ck;
}

// One training epoch's batches: shuffled by the epoch's seed, RandomResizedCrop + flip, the
// last partial batch dropped; a rank of a distributed run takes its rows of every batch.
data::EpochOptions epoch_options(const SqueezeConfig& config, int64_t image_size, int64_t epoch,
                                 const Dist* dist) {
  data::EpochOptions eo;
  eo.batch_size = config.batch_size;
  eo.image_size = image_size;
  eo.augment = true;
  eo.crop.scale_lo = config.crop_scale_min;
  eo.crop.flip = config.flip;
  eo.shuffle = true;
  eo.drop_last = true;
  eo.seed = derive_seed(config.seed, kTagTrainOrder, static_cast<uint64_t>(epoch));
  eo.workers = static_cast<int>(config.workers);
  if (dist) eo.shard = dist->rank(), eo.shards = dist->world_size(), eo.shard_rows = true;
  return eo;
}

// SGD + momentum, cosine per step after an optional linear warm-up, RandomResizedCrop +
// flip (METHOD.md Stage 1), from `state` (a resumed run's epoch) on; the state is saved
// every config.checkpoint_every epochs through `save`.
// In a distributed run each rank takes its slice of every batch and the gradients are summed
// (engine/data_parallel.h): the one-process run's steps, but for BatchNorm's per-rank
// statistics.
void train_teacher(const SqueezeConfig& config, models::Checkpoint& ck,
                   const std::shared_ptr<data::Dataset>& train_set, const torch::Device& device,
                   Progress& progress, SqueezeState& state,
                   const std::function<void(const SqueezeState&)>& save, Dist* dist) {
  auto& model = *ck.model;
  const auto precision = engine::Precision{config.amp, config.channels_last};
  if (precision.channels_last) engine::to_channels_last(model);
  engine::GradScaler scaler(precision.amp, device);
  torch::optim::SGD sgd(model.parameters(), torch::optim::SGDOptions(config.lr)
                                                .momentum(config.momentum)
                                                .weight_decay(config.weight_decay));
  engine::load_optimizer_tensors(sgd, state.optimizer, config.out + ".state");
  const int64_t n = train_set->size();
  const int64_t steps_per_epoch = std::max<int64_t>(1, n / config.batch_size);
  const int64_t total = steps_per_epoch * config.epochs;
  const auto train_start = Clock::now();
  const double prior_seconds = state.train_seconds;
  // The whole run's images, a resumed run's first ones counted as done (not in the rate).
  progress.start("squeeze train", total * config.batch_size, "img");
  if (state.step > 0) progress.skip(state.step * config.batch_size);
  model.train();
  for (int64_t epoch = state.epochs_done; epoch < config.epochs; ++epoch) {
    data::EpochBatches batches(train_set, ck.meta.norm,
                               epoch_options(config, ck.meta.image_size, epoch, dist), device);
    torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().device(device));
    int64_t epoch_steps = 0;
    const std::string status = fmt::format("epoch {}/{}", epoch + 1, config.epochs);
    while (auto batch = batches.next()) {
      const auto t0 = Clock::now();
      engine::set_lr(sgd, engine::cosine_lr(config.lr, static_cast<double>(state.step), total,
                                            config.warmup_epochs * steps_per_epoch));
      sgd.zero_grad();
      torch::Tensor logits;
      {  // the forward under autocast, the loss in float32 (engine/precision.h)
        engine::AutocastGuard autocast(device, precision.amp);
        logits = model.forward(engine::in_layout(batch->first, precision));
      }
      auto loss = torch::cross_entropy_loss(logits.to(torch::kFloat), batch->second);
      if (dist)  // this rank's mean, weighted by its share of the batch
        loss = loss * (static_cast<double>(batch->second.size(0)) /
                       static_cast<double>(std::min(config.batch_size, n)));
      scaler.scale(loss).backward();
      if (dist) engine::all_reduce_gradients(*dist, model, "squeeze: gradients");
      scaler.step(sgd);
      loss_sum += loss.detach();
      ++state.step;
      ++epoch_steps;
      state.step_seconds += seconds_since(t0);
      state.train_images += dist ? std::min(config.batch_size, n) : batch->second.size(0);
      progress.update(state.step * config.batch_size, status);
    }
    if (dist) {
      std::vector<torch::Tensor> l{loss_sum};
      dist->all_reduce_sum(l, "squeeze: the epoch's loss");
      loss_sum = l[0];
    }
    const double mean_loss = loss_sum.item<double>() / std::max<int64_t>(1, epoch_steps);
    if (!std::isfinite(mean_loss))
      throw std::runtime_error("squeeze: training diverged (loss is not finite); lower --lr");
    progress.message(
        fmt::format("squeeze epoch {}/{}: loss {:.4f}", epoch + 1, config.epochs, mean_loss));
    state.epochs_done = epoch + 1;
    state.train_seconds = prior_seconds + seconds_since(train_start);
    // The last epoch saves too: the evaluation and the class-statistics pass come after it,
    // and a kill there must not train it again. (Its averaged buffers are the final ones.)
    if (state.epochs_done % config.checkpoint_every == 0 || state.epochs_done == config.epochs) {
      if (dist) engine::average_buffers(*dist, model, "squeeze: BatchNorm statistics");
      state.optimizer = engine::optimizer_tensors(sgd);
      save(state);
    }
  }
  progress.finish();
}

// The class-wise BN statistics of the trained teacher (METHOD.md Stage 1), resumed from a
// killed pass's state; a distributed pass is short next to training and starts over.
models::ClassStats class_stats_pass(const SqueezeConfig& config, models::Checkpoint& ck,
                                    const std::shared_ptr<data::Dataset>& train_set,
                                    const torch::Device& device, const SqueezeState& state,
                                    const std::function<void(const SqueezeState&)>& save,
                                    Dist* dist, Progress& progress) {
  ClassStatsOptions so;
  so.image_size = ck.meta.image_size;
  so.augment = config.stats_augment;
  so.crop.scale_lo = config.crop_scale_min;
  so.crop.flip = config.flip;
  so.seed = derive_seed(config.seed, kTagTrainAug, 1u << 20);
  so.workers = static_cast<int>(config.workers);
  if (dist) {
    so.dist = dist;
  } else {
    if (state.phase == "stats" && state.stats_batches > 0) {
      so.start_batch = state.stats_batches;
      so.resume_sums = &state.stats;
    }
    so.checkpoint = [&](int64_t batches, const ClassStatsAccumulator& acc) {
      SqueezeState s = state;
      s.phase = "stats", s.stats_batches = batches, s.stats = acc.sums(), s.optimizer.clear();
      save(s);
    };
  }
  return compute_class_stats(*ck.model, train_set, ck.meta.norm, so, device, progress);
}

// What makes two squeeze runs the same (the resume state of one serves the other).
json squeeze_identity(const SqueezeConfig& c) {
  json j = config_json(c);
  for (const char* k : {"device", "workers", "checkpoint_every"}) j.erase(k);
  return j;
}

}  // namespace

namespace {

// The training and validation sets (decoded into memory when their images have one size).
std::pair<std::shared_ptr<data::Dataset>, std::shared_ptr<data::Dataset>> open_sets(
    const SqueezeConfig& config) {
  auto train_set = data::open_dataset(config.data);
  auto val_set = data::open_dataset(config.val);
  if (train_set->fixed_size()[0] > 0) train_set = data::load_into_memory(train_set);
  if (val_set->fixed_size()[0] > 0) val_set = data::load_into_memory(val_set);
  check_arg(val_set->num_classes() == train_set->num_classes(), "--val",
            "has " + std::to_string(val_set->num_classes()) + " classes, the training set " +
                std::to_string(train_set->num_classes()));
  return {train_set, val_set};
}

// One process's part of a squeeze run (`dist` null: the whole run). In a distributed run the
// ranks train one teacher data-parallel and gather the class statistics over shares of the
// data; rank 0 alone holds the lock and writes the state and the checkpoint.
SqueezeResult squeeze_part(const SqueezeConfig& requested, Progress& progress, Dist* dist) {
  const auto start = Clock::now();
  const torch::Device device = parse_device(requested.device);
  torch::manual_seed(requested.seed);  // weight initialization
  const auto [train_set, val_set] = open_sets(requested);
  models::Checkpoint ck = open_teacher(requested, *train_set, device);
  std::string note;
  const SqueezeConfig config = requested.resolved(ck.meta.image_size, ck.meta.channels, &note);
  if (!note.empty() && config.epochs > 0) progress.message(note);
  config.validate();
  progress.message(
      fmt::format("squeeze: teacher recipe '{}' ({} px)", config.recipe, ck.meta.image_size));
  SqueezeResult result;
  result.recipe = config.recipe;
  // One writer per checkpoint; a killed run's state is resumed (squeeze/resume.h).
  StageOutput output("squeeze", config.out, StageOutput::Kind::kFile, "state",
                     squeeze_identity(config), dist);
  SqueezeState state = load_squeeze_state(output.state_path(), output.identity(), *ck.model)
                           .value_or(SqueezeState{});
  result.resumed_from_epoch = state.epochs_done;
  if (state.epochs_done > 0 || state.phase == "stats")
    progress.message(fmt::format("squeeze: resuming {} after epoch {}{}", config.out,
                                 state.epochs_done,
                                 state.phase == "stats" ? ", in the class-statistics pass" : ""));
  auto save = [&](const SqueezeState& s) {
    if (output.writer()) save_squeeze_state(output.state_path(), output.identity(), *ck.model, s);
  };
  result.setup_seconds = seconds_since(start);
  if (config.epochs > 0 && state.phase == "train")
    train_teacher(config, ck, train_set, device, progress, state, save, dist);
  result.train_images = state.train_images;
  result.train_seconds = state.train_seconds;
  result.images_per_second =
      result.train_seconds > 0 ? result.train_images / result.train_seconds : 0;
  result.step_images_per_second =
      state.step_seconds > 0 ? result.train_images / state.step_seconds : 0;

  auto& model = *ck.model;
  model.eval();
  if (!state.eval) {
    state.eval = engine::evaluate(model, val_set, ck.meta.norm, ck.meta.image_size, device,
                                  progress, 100, dist);
    // Training and evaluation are done: a kill in the stats pass must not redo them.
    if (config.class_stats && state.phase == "train") {
      state.phase = "stats", state.stats_batches = 0, state.optimizer.clear();
      save(state);
    }
  }
  const engine::EvalResult& ev = *state.eval;
  result.top1 = ev.top1;
  result.top5 = ev.top5;
  result.eval_seconds = ev.seconds;
  progress.message(fmt::format("teacher top-1 {:.2f}%, top-5 {:.2f}%", ev.top1, ev.top5));

  const auto stats_start = Clock::now();
  if (config.class_stats)
    ck.class_stats = class_stats_pass(config, ck, train_set, device, state, save, dist, progress);
  result.stats_seconds = seconds_since(stats_start);

  ck.meta.info = {
      {"stage", "squeeze"}, {"config", config_json(config)}, {"top1", ev.top1}, {"top5", ev.top5}};
  output.publish([&] { models::save_checkpoint(config.out, ck); });
  result.checkpoint = config.out;
  result.num_classes = ck.meta.num_classes;
  result.checkpoint_hash = hash_file(config.out);
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace

SqueezeResult squeeze(const SqueezeConfig& config, Progress& progress) {
  config.validate();
  // (on the options as asked: a recipe resolved later sets them whether or not they are used)
  if (config.epochs == 0) {  // nothing is trained: a training option set here would do nothing
    const json set = options_set(config);
    for (const auto& [key, flag] : {std::pair{"lr", "--lr"},
                                    {"momentum", "--momentum"},
                                    {"weight_decay", "--weight-decay"},
                                    {"warmup_epochs", "--warmup-epochs"}})
      check_arg(!set.contains(key), flag,
                "has no effect with --epochs 0 (the teacher is not trained)");
  }
  return run_distributed(config.device,
                         [&](Dist* dist) { return squeeze_part(config, progress, dist); });
}

}  // namespace lpld::squeeze
