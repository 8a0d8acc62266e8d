#include "train/student.h"

#include <filesystem>
#include <map>
#include <numeric>

#include "core/clock.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/safetensors.h"
#include "data/batches.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "relabel/image_set.h"
#include "relabel/label_store.h"
#include "relabel/replay.h"
#include "train/evaluate.h"
#include "train/label_pool.h"
#include "train/optimizer_state.h"
#include "train/schedule.h"

namespace lpld::train {
namespace fs = std::filesystem;
namespace {

// KL(softmax(t/T) || softmax(s/T)), mean over the batch.
torch::Tensor kd_loss(const torch::Tensor& student, const torch::Tensor& teacher, double T,
                      bool squared) {
  auto log_p_s = torch::log_softmax(student / T, 1);
  auto log_p_t = torch::log_softmax(teacher / T, 1);
  auto loss = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean();
  return squared ? loss * (T * T) : loss;
}
}  // namespace

void TrainConfig::declare(OptionSet& o) {
  o.add("images", &images, "synthetic image folder (recover output)")
      .add("labels", &labels, "label store (relabel output) or 'online'")
      .add("teacher", &teacher, "teacher checkpoint (online labels)")
      .add("val", &val, "real validation set spec")
      .add("arch", &arch, "student architecture")
      .add("out", &out, "output folder")
      .add("epochs", &epochs, "training epochs")
      .add("prune_ratio", &prune_ratio, "R: the label pool is the first floor((1-R) * S) steps")
      .add("granularity", &granularity, "batch_to_epoch, batch or epoch")
      .add("metric", &metric,
           "random, order, or rule-based <rule>_easy|_hard with rule correct, diff, diff_signed, "
           "cut_ratio or confidence (needs an unpruned store)")
      .add("optimizer", &optimizer, "adamw or sgd")
      .add("lr", &lr, "peak learning rate (cosine per epoch)")
      .add("weight_decay", &weight_decay, "weight decay")
      .add("momentum", &momentum, "SGD momentum")
      .add("warmup_epochs", &warmup_epochs, "linear warm-up epochs")
      .add("temperature", &temperature, "distillation temperature T")
      .add("temperature_squared", &temperature_squared, "multiply the loss by T^2 (tiny recipe)")
      .add("eval_every", &eval_every, "evaluate every K epochs (0: at the end only)")
      .add("checkpoint_every", &checkpoint_every, "epochs between resume checkpoints")
      .add("batch_size", &batch_size, "online labels: batch size")
      .add("cutmix", &cutmix, "online labels: CutMix")
      .add("cutmix_alpha", &cutmix_alpha, "online labels: CutMix Beta(alpha, alpha)")
      .add("crop_scale_min", &crop_scale_min, "online labels: crop minimum area fraction")
      .add("seed", &seed, "random seed (student init, pool draws)")
      .add("device", &device, "cpu, cuda or cuda:N");
}

void TrainConfig::apply_recipe(const std::string& name) {
  if (name == "imagenet1k" || name == "small") {
    epochs = 300, optimizer = "adamw", lr = 1e-3, weight_decay = 0.01, warmup_epochs = 0;
    temperature = 20, temperature_squared = false, cutmix = true,
    batch_size = name == "small" ? 20 : 128;
  } else if (name == "tiny") {
    epochs = 100, optimizer = "sgd", lr = 0.2, momentum = 0.9, weight_decay = 1e-4;
    warmup_epochs = 5, temperature = 20, temperature_squared = true, cutmix = false,
    batch_size = 64;
  } else {
    throw std::invalid_argument("--recipe: unknown recipe '" + name +
                                "' (use imagenet1k, tiny or small)");
  }
}

void TrainConfig::validate() const {
  check_arg(!images.empty(), "--images", "the synthetic image folder is required");
  check_arg(!labels.empty(), "--labels", "a label store or 'online' is required");
  check_arg(labels != "online" || !teacher.empty(), "--teacher", "online labels need a teacher");
  check_arg(!val.empty(), "--val", "a validation set is required");
  check_arg(!out.empty(), "--out", "an output folder is required");
  check_arg(epochs >= 1, "--epochs", "must be >= 1");
  check_arg(prune_ratio >= 0 && prune_ratio < 1, "--prune-ratio", "must be in [0, 1)");
  check_arg(labels != "online" || prune_ratio == 0, "--prune-ratio",
            "online labels are never pruned");
  check_arg(optimizer == "adamw" || optimizer == "sgd", "--optimizer", "must be adamw or sgd");
  check_arg(lr > 0, "--lr", "must be > 0");
  check_arg(weight_decay >= 0, "--weight-decay", "must be >= 0");
  check_arg(warmup_epochs >= 0 && warmup_epochs < epochs, "--warmup-epochs",
            "must be in [0, epochs)");
  check_arg(temperature > 0, "--temperature", "must be > 0");
  check_arg(eval_every >= 0, "--eval-every", "must be >= 0");
  check_arg(checkpoint_every >= 1, "--checkpoint-every", "must be >= 1");
  check_arg(batch_size >= 1, "--batch-size", "must be >= 1");
  check_arg(cutmix_alpha > 0, "--cutmix-alpha", "must be > 0");
}

json TrainResult::to_json() const {
  json j = {{"top1", top1},
            {"top5", top5},
            {"seconds", seconds},
            {"train_seconds", train_seconds},
            {"images_per_second", images_per_second},
            {"steps", steps},
            {"pool_steps", pool_steps},
            {"resumed_from_epoch", resumed_from_epoch},
            {"evals", evals}};
  if (!rule_pool.is_null()) j["rule_pool"] = rule_pool;
  return j;
}

TrainResult train_student(const TrainConfig& config, Progress& progress) {
  config.validate();
  const auto start = Clock::now();
  const torch::Device device = parse_device(config.device);
  const bool online = config.labels == "online";

  // --- inputs, all checked before any training ---
  relabel::ImageSet set = relabel::load_image_set(config.images);
  std::unique_ptr<relabel::LabelStore> store;
  std::optional<models::Checkpoint> teacher;
  relabel::LabelHeader h;
  if (online) {
    teacher = models::load_checkpoint(config.teacher, device);
    h.num_images = set.images->size();
    h.num_classes = teacher->meta.num_classes;
    h.channels = teacher->meta.channels;
    h.image_size = teacher->meta.image_size;
    h.epochs = config.epochs;
    h.batch_size = config.batch_size;
    h.steps_kept = h.total_steps();
    h.seed = config.seed;
    h.crop.scale_lo = config.crop_scale_min;
    h.cutmix = config.cutmix;
    h.cutmix_alpha = config.cutmix_alpha;
    h.norm = teacher->meta.norm;
    h.images = set.paths;
    h.image_set_hash = set.hash;
    h.teacher_hash = hash_file(config.teacher);
  } else {
    store = std::make_unique<relabel::LabelStore>(config.labels);
    h = store->header();
    check_arg(h.image_set_hash == set.hash && h.images == set.paths, "--labels",
              config.labels + " was made for other images than " + config.images +
                  " (image set hash differs)");
  }
  check_arg(set.images->num_classes() == h.num_classes, "--images",
            "class count differs from the labels'");
  PoolSpec pool;
  pool.granularity = config.granularity;
  pool.metric = config.metric;
  pool.batches_per_epoch = h.batches_per_epoch();
  pool.stored_epochs = h.epochs;
  pool.seed = config.seed;
  pool.pool_steps =
      online ? h.total_steps() : relabel::steps_for_ratio(config.prune_ratio, h.total_steps());
  validate_pool(pool);
  if (is_rule_metric(config.metric)) {
    // Rule-based pruning scores every step, so it needs a store with all of them.
    check_arg(
        !online && h.steps_kept == h.total_steps(), "--metric",
        config.metric + " ranks all label steps: give a store relabelled with --prune-ratio 0");
  }
  check_arg(
      pool.pool_steps <= h.steps_kept, "--prune-ratio",
      fmt::format("{} needs the first {} label steps but {} keeps only {} (relabel it with "
                  "--prune-ratio <= {})",
                  config.prune_ratio, pool.pool_steps, config.labels, h.steps_kept, h.prune_ratio));
  auto val_set = data::open_dataset(config.val);
  check_arg(val_set->num_classes() == h.num_classes, "--val",
            "has " + std::to_string(val_set->num_classes()) + " classes, the labels " +
                std::to_string(h.num_classes));
  if (val_set->fixed_size()[0] > 0) val_set = data::load_into_memory(val_set);

  // --- identity of this run: a different run in the same folder is an error ---
  json identity = config_json(config);
  for (const char* k : {"device", "eval_every", "checkpoint_every", "out"}) identity.erase(k);
  const std::string header_text = h.to_json().dump();
  identity["label_header_hash"] =
      online ? h.teacher_hash : hash_bytes(header_text.data(), header_text.size());
  identity["image_set_hash"] = set.hash;
  make_dirs(config.out);
  const std::string result_path = config.out + "/result.json";
  const std::string state_path = config.out + "/train-state.safetensors";
  if (file_exists(result_path)) {
    json done = read_json(result_path);
    if (done.value("identity", json()) == identity) {
      TrainResult r;
      r.top1 = done["top1"], r.top5 = done["top5"], r.seconds = done["seconds"];
      r.train_seconds = done["train_seconds"], r.images_per_second = done["images_per_second"];
      r.steps = done["steps"], r.pool_steps = done["pool_steps"], r.evals = done["evals"];
      r.rule_pool = done.value("rule_pool", json());
      r.reused = true;
      return r;
    }
    throw std::invalid_argument("--out: " + config.out +
                                " holds a finished run with another config");
  }

  std::map<int64_t, std::vector<int64_t>> orders;  // epoch order cache (a few epochs)
  auto plan_of = [&](int64_t s) {
    const int64_t e = s / h.batches_per_epoch();
    auto it = orders.find(e);
    if (it == orders.end()) {
      if (orders.size() >= 16) orders.erase(orders.begin());
      it = orders.emplace(e, relabel::epoch_order(h, e)).first;
    }
    return relabel::plan_step(h, s, &it->second);
  };
  json rule_pool = nullptr;
  if (is_rule_metric(config.metric)) {
    // Rule-based pruning (METHOD.md "Analysis"): score every stored step, keep the best or worst.
    const auto cut = config.metric.rfind('_');
    const std::string rule = config.metric.substr(0, cut);
    const bool easy = config.metric.substr(cut + 1) == "easy";
    auto labels_all = torch::tensor(h.labels, torch::kInt64);
    std::vector<double> scores;
    for (int64_t s = 0; s < h.total_steps(); ++s) {
      auto plan = plan_of(s);
      auto idx = torch::tensor(plan.indices, torch::kInt64);
      scores.push_back(rule_score(rule, torch::softmax(store->logits(s), 1),
                                  labels_all.index_select(0, idx),
                                  plan.cutmix ? plan.mix.lambda : 1.0));
    }
    pool.selected = select_by_score(scores, pool.pool_steps, easy);
    double pool_sum = 0;
    for (int64_t id : pool.selected) pool_sum += scores[static_cast<size_t>(id)];
    rule_pool = {{"rule", rule},
                 {"side", easy ? "easy" : "hard"},
                 {"score_mean_pool", pool_sum / static_cast<double>(pool.selected.size())},
                 {"score_mean_all", std::accumulate(scores.begin(), scores.end(), 0.0) /
                                        static_cast<double>(scores.size())},
                 {"selected_steps", pool.selected}};
  }

  // --- model and optimizer ---
  torch::manual_seed(config.seed);
  models::Checkpoint student;
  student.meta.arch = config.arch;
  student.meta.num_classes = h.num_classes;
  student.meta.channels = h.channels;
  student.meta.image_size = h.image_size;
  student.meta.class_names = set.images->class_names();
  student.meta.norm = h.norm;
  student.meta.dataset = config.images;
  student.meta.seed = config.seed;
  student.model = models::make_model({config.arch, h.num_classes, h.channels, h.image_size});
  student.model->to(device);
  auto& model = *student.model;
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (config.optimizer == "adamw")
    opt = std::make_unique<torch::optim::AdamW>(
        model.parameters(),
        torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
  else
    opt = std::make_unique<torch::optim::SGD>(model.parameters(),
                                              torch::optim::SGDOptions(config.lr)
                                                  .momentum(config.momentum)
                                                  .weight_decay(config.weight_decay));

  TrainResult result;
  result.pool_steps = pool.pool_steps;
  result.rule_pool = rule_pool;
  int64_t first_epoch = 0, images_seen = 0;
  double prior_train_seconds = 0;  // training time before a resume
  Clock::time_point train_start;
  if (file_exists(state_path)) {
    auto st = load_safetensors(state_path);
    check_file(
        st.metadata.count("identity") && json::parse(st.metadata["identity"]) == identity,
        state_path,
        "resume state belongs to another run (config differs); delete it or use a new --out");
    torch::NoGradGuard ng;
    for (auto& p : model.named_parameters()) p.value().copy_(st.tensors.at("model." + p.key()));
    for (auto& b : model.named_buffers()) b.value().copy_(st.tensors.at("model." + b.key()));
    load_optimizer_tensors(*opt, st.tensors, state_path);
    first_epoch = std::stoll(st.metadata["epochs_done"]);
    result.steps = std::stoll(st.metadata["steps"]);
    prior_train_seconds = std::stod(st.metadata["train_seconds"]);
    images_seen = std::stoll(st.metadata["images_seen"]);
    result.evals = json::parse(st.metadata["evals"]);
    result.resumed_from_epoch = first_epoch;
    progress.message(fmt::format("resuming {} at epoch {}", config.out, first_epoch));
  }
  auto save_state = [&](int64_t epochs_done) {
    TensorFile f;
    for (const auto& p : model.named_parameters()) f.tensors["model." + p.key()] = p.value();
    for (const auto& b : model.named_buffers()) f.tensors["model." + b.key()] = b.value();
    for (auto& [k, t] : optimizer_tensors(*opt)) f.tensors[k] = t;
    f.metadata["identity"] = identity.dump();
    f.metadata["epochs_done"] = std::to_string(epochs_done);
    f.metadata["evals"] = result.evals.dump();
    f.metadata["steps"] = std::to_string(result.steps);
    f.metadata["train_seconds"] =
        fmt::format("{}", prior_train_seconds + seconds_since(train_start));
    f.metadata["images_seen"] = std::to_string(images_seen);
    save_safetensors(state_path, f);
  };

  auto images = set.images->images().to(device);  // uint8; render_step normalizes per step
  const data::NormTensors norm(h.norm, device);
  auto eval_and_log = [&](int64_t epoch) {
    auto ev = evaluate(model, val_set, h.norm, h.image_size, device, Progress::null());
    json line = {
        {"epoch", epoch}, {"top1", ev.top1}, {"top5", ev.top5}, {"seconds", seconds_since(start)}};
    result.evals.push_back(line);
    AtomicFile f(config.out + "/eval.jsonl");
    for (const auto& l : result.evals) {
      const std::string s = l.dump() + "\n";
      f.write(s.data(), s.size());
    }
    f.commit();
    progress.message("eval " + line.dump());
    return ev;
  };

  // --- train ---
  train_start = Clock::now();
  const int64_t bpe = h.batches_per_epoch();
  progress.start(
      "train " + std::string(online ? "online" : fmt::format("R={}", config.prune_ratio)),
      (config.epochs - first_epoch) * bpe, "step");
  model.train();
  for (int64_t epoch = first_epoch; epoch < config.epochs; ++epoch) {
    set_lr(*opt,
           cosine_lr(config.lr, static_cast<double>(epoch), static_cast<double>(config.epochs),
                     static_cast<double>(config.warmup_epochs)));
    const auto steps = online ? [&] {
      std::vector<int64_t> s(static_cast<size_t>(bpe));
      for (int64_t b = 0; b < bpe; ++b) s[b] = epoch * bpe + b;
      return s;
    }() : draw_epoch_steps(pool, epoch);
    torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().device(device));
    for (size_t i = 0; i < steps.size(); ++i) {
      // Plan and stored logits are cheap (RNG draws, one mapped record); a helper thread
      // per step cost more in thread and OpenMP-team start-up than it saved.
      auto plan = plan_of(steps[i]);
      torch::Tensor target = online ? torch::Tensor() : store->logits(steps[i]);
      auto batch = relabel::render_step(images, norm, plan, h.image_size);
      if (online) {
        torch::NoGradGuard ng;
        target = teacher->model->forward(batch);
      } else {
        target = target.to(device);
      }
      auto loss =
          kd_loss(model.forward(batch), target, config.temperature, config.temperature_squared);
      opt->zero_grad();
      loss.backward();
      opt->step();
      loss_sum += loss.detach();
      images_seen += batch.size(0);
      ++result.steps;
    }
    const double mean_loss = loss_sum.item<double>() / static_cast<double>(steps.size());
    if (!std::isfinite(mean_loss))
      throw std::runtime_error("train: loss is not finite at epoch " + std::to_string(epoch + 1) +
                               "; lower --lr");
    progress.update((epoch + 1 - first_epoch) * bpe,
                    fmt::format("epoch {} loss {:.4f}", epoch + 1, mean_loss));
    const bool last = epoch + 1 == config.epochs;
    if (config.eval_every > 0 && (epoch + 1) % config.eval_every == 0 && !last) {
      eval_and_log(epoch + 1);
      model.train();
    }
    if ((epoch + 1) % config.checkpoint_every == 0 && !last) save_state(epoch + 1);
  }
  progress.finish();
  result.train_seconds = prior_train_seconds + seconds_since(train_start);
  result.images_per_second = result.train_seconds > 0 ? images_seen / result.train_seconds : 0;
  auto ev = eval_and_log(config.epochs);
  result.top1 = ev.top1;
  result.top5 = ev.top5;
  result.seconds = seconds_since(start);

  student.meta.info = {
      {"stage", "train"}, {"config", config_json(config)}, {"top1", ev.top1}, {"top5", ev.top5}};
  models::save_checkpoint(config.out + "/student.safetensors", student);
  json rj = result.to_json();
  rj["identity"] = identity;
  write_json(result_path, rj);
  fs::remove(state_path);
  return result;
}

}  // namespace lpld::train
