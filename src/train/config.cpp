// TrainConfig: options, recipes, validation, the teacher's temperature schedule; TrainResult's
// JSON; the names of the optimizer and schedule choices.
#include <cmath>

#include "core/error.h"
#include "train/student.h"

namespace lpld::train {

const std::vector<Choice<Optimizer>>& choices(Optimizer) {
  static const std::vector<Choice<Optimizer>> table = {{Optimizer::adamw, "adamw"},
                                                       {Optimizer::sgd, "sgd"}};
  return table;
}

const std::vector<Choice<TemperatureSchedule>>& choices(TemperatureSchedule) {
  static const std::vector<Choice<TemperatureSchedule>> table = {
      {TemperatureSchedule::constant, "constant"},
      {TemperatureSchedule::step, "step"},
      {TemperatureSchedule::cosine, "cosine"}};
  return table;
}

void TrainConfig::declare(OptionSet& o) {
  o.add("recipe", &recipe, "auto (from the labels' resolution), small, tiny or imagenet1k")
      .add("images", &images, "synthetic image folder (recover output)")
      .add("labels", &labels, "label store (relabel output) or 'online'")
      .add("teacher", &teacher, "teacher checkpoint (online labels)")
      .add("val", &val, "real validation set spec")
      .add("arch", &arch, "student architecture")
      .add("out", &out, "output folder")
      .add("epochs", &epochs, "training epochs")
      .add("prune_ratio", &prune_ratio, "R: the label pool is the first floor((1-R) * S) steps")
      .add("granularity", &granularity, "how epochs draw from the label pool")
      .add("metric", &metric,
           "random, order, or rule-based <rule>_easy|_hard with rule correct, diff, diff_signed, "
           "cut_ratio or confidence (needs an unpruned store)")
      .add("fallback_share", &fallback_share,
           "share of training steps that render a pruned step's views, labelled from the "
           "store's image labels (relabel --image-labels) instead of the pool")
      .add("optimizer", &optimizer, "optimizer")
      .add("lr", &lr, "peak learning rate (cosine per epoch)")
      .add("weight_decay", &weight_decay, "weight decay")
      .add("momentum", &momentum, "SGD momentum")
      .add("warmup_epochs", &warmup_epochs, "linear warm-up epochs")
      .add("temperature", &temperature, "distillation temperature T")
      .add("temperature_squared", &temperature_squared, "multiply the loss by T^2 (tiny recipe)")
      .add("temperature_schedule", &temperature_schedule,
           "teacher temperature over epochs (LPQLD's DKR)")
      .add("temperature_step", &temperature_step, "step schedule: epochs between decays")
      .add("temperature_gamma", &temperature_gamma, "step schedule: decay factor")
      .add("temperature_floor", &temperature_floor, "step schedule: lowest temperature")
      .add("temperature_min", &temperature_min, "cosine schedule: final temperature")
      .add("student_temperature", &student_temperature,
           "student softmax temperature (LPQLD's CA; 0: the teacher's)")
      .add("student_temperature_search", &student_temperature_search,
           "re-choose the student temperature after every epoch (LPQLD's dynamic CA)")
      .add("eval_every", &eval_every, "evaluate every K epochs (0: at the end only)")
      .add("checkpoint_every", &checkpoint_every, "epochs between resume checkpoints");
  views.declare(o, "online labels (a store's own otherwise): ");
  o.add("seed", &seed, "random seed (student init, pool draws)")
      .add("device", &device, "cpu, cuda or cuda:N")
      .add("amp", &amp, "mixed precision: off, bf16 or fp16 (autocast; fp16 with loss scaling)")
      .add("channels_last", &channels_last, "channels-last (NHWC) model and inputs")
      .add("read_ahead", &read_ahead,
           "label steps whose images and labels are read ahead of the compute (0: inline; "
           "-1: 2 on a GPU, 0 on the CPU)");
}

void TrainConfig::apply_recipe(const std::string& name) {
  if (name == "auto") {  // resolved by open_inputs
  } else if (name == "imagenet1k" || name == "small") {
    epochs = 300, optimizer = Optimizer::adamw, lr = 1e-3, weight_decay = 0.01, warmup_epochs = 0;
    temperature = 20, temperature_squared = false, views.cutmix = true;
    views.batch_size = name == "small" ? 20 : 128;
  } else if (name == "tiny") {
    epochs = 100, optimizer = Optimizer::sgd, lr = 0.2, momentum = 0.9, weight_decay = 1e-4;
    warmup_epochs = 5, temperature = 20, temperature_squared = true, views.cutmix = false;
    views.batch_size = 64;
  } else {
    throw std::invalid_argument("--recipe: unknown recipe '" + name +
                                "' (use auto, imagenet1k, tiny or small)");
  }
  recipe = name;
}

void TrainConfig::validate() const {
  check_arg(!images.empty(), "--images", "the synthetic image folder is required");
  check_arg(!labels.empty(), "--labels", "a label store or 'online' is required");
  check_arg(labels != "online" || !teacher.empty(), "--teacher", "online labels need a teacher");
  check_arg(!val.empty(), "--val", "a validation set is required");
  check_arg(!out.empty(), "--out", "an output folder is required");
  check_arg(epochs >= 1, "--epochs", "must be >= 1");
  labels::check_prune_ratio(prune_ratio);
  check_arg(labels != "online" || prune_ratio == 0, "--prune-ratio",
            "online labels are never pruned");
  check_arg(labels != "online" || fallback_share == 0, "--fallback-share",
            "online labels label every step");
  check_arg(lr > 0, "--lr", "must be > 0");
  check_arg(weight_decay >= 0, "--weight-decay", "must be >= 0");
  check_arg(warmup_epochs >= 0 && warmup_epochs < epochs, "--warmup-epochs",
            "must be in [0, epochs)");
  check_arg(temperature > 0, "--temperature", "must be > 0");
  check_arg(temperature_step >= 1, "--temperature-step", "must be >= 1");
  check_arg(temperature_gamma > 0 && temperature_floor > 0 && temperature_min > 0,
            "--temperature-gamma", "schedule parameters must be > 0");
  check_arg(student_temperature >= 0, "--student-temperature", "must be >= 0 (0: the teacher's)");
  check_arg(eval_every >= 0, "--eval-every", "must be >= 0");
  check_arg(checkpoint_every >= 1, "--checkpoint-every", "must be >= 1");
  check_arg(read_ahead >= -1 && read_ahead <= 64, "--read-ahead",
            "must be in [0, 64], or -1 (automatic)");
  views.validate();
}

json TrainResult::to_json() const {
  json j = {{"recipe", recipe},
            {"top1", top1},
            {"top5", top5},
            {"seconds", seconds},
            {"train_seconds", train_seconds},
            {"setup_seconds", setup_seconds},
            {"images_per_second", images_per_second},
            {"input_wait_seconds", input_wait_seconds},
            {"steps", steps},
            {"pool_steps", pool_steps},
            {"resumed_from_epoch", resumed_from_epoch},
            {"evals", evals}};
  if (!rule_pool.is_null()) j["rule_pool"] = rule_pool;
  return j;
}

double teacher_temperature(const TrainConfig& c, int64_t epoch, int64_t epochs) {
  if (c.temperature_schedule == TemperatureSchedule::step)
    return std::max(c.temperature_floor,
                    c.temperature * std::pow(c.temperature_gamma,
                                             static_cast<double>(epoch / c.temperature_step)));
  if (c.temperature_schedule == TemperatureSchedule::cosine)
    return c.temperature_min +
           0.5 * (c.temperature - c.temperature_min) *
               (1 + std::cos(M_PI * static_cast<double>(epoch) / static_cast<double>(epochs)));
  return c.temperature;
}

}  // namespace lpld::train
