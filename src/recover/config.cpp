// RecoverConfig, the records of recover.json / class.json / result.json, and the mode's names.
#include <string>

#include "core/error.h"
#include "recover/recover.h"

namespace lpld::recover {

void RecoverConfig::declare(OptionSet& o) {
  o.add("recipe", &recipe, "auto (from the teacher's resolution), small, tiny or imagenet1k")
      .add("teacher", &teacher, "teacher checkpoint from squeeze")
      .add("out", &out, "output folder (ImageFolder of PNGs)")
      .add("mode", &mode, "class: LPLD, one class per batch, class BN stats; mixed: SRe2L")
      .add("ipc", &ipc, "images per class")
      .add("iterations", &iterations, "optimization steps per batch")
      .add("lr", &lr, "Adam learning rate (cosine to 0)")
      .add("r_bn", &r_bn, "weight of the BN-matching loss")
      .add("first_bn_multiplier", &first_bn_multiplier, "extra weight of the first BN layer")
      .add("jitter", &jitter, "circular roll offset range (pixels)")
      .add("jitter_signed", &jitter_signed,
           "roll offsets in [-jitter, jitter] instead of [0, jitter]")
      .add("batch_size", &batch_size,
           "class mode: images per class batch (0: ipc); mixed mode: classes per batch, one "
           "image each (0: up to 100, SRe2L's)")
      .add("per_image_augment", &per_image_augment, "a crop/flip per image instead of per batch")
      .add("crop_scale_min", &crop_scale_min, "RandomResizedCrop minimum area fraction")
      .add("tv_l2", &tv_l2, "total-variation L2 prior weight")
      .add("l2", &l2, "image L2 prior weight")
      .add("seed", &seed, "random seed")
      .add("classes", &classes, "BEGIN:END: only these classes (split a run over processes)")
      .add("pack", &pack, "units per forward pass (0: automatic)")
      .add("checkpoint_every", &checkpoint_every,
           "iterations between the resume states of a group (0: never)")
      .add("stall_restarts", &stall_restarts,
           "restarts of a unit that stalls, from fresh streams (0: never restart)")
      .add("stall_loss", &stall_loss,
           "stall rule: final-window loss (CE + r_bn BN) above this x the first window's")
      .add("stall_accuracy", &stall_accuracy,
           "stall rule: fewer of a unit's saved images classified right than this fraction")
      .add("device", &device, "cpu, cuda or cuda:N")
      .add("amp", &amp, "mixed precision: off, bf16 or fp16 (autocast; fp16 with loss scaling)")
      .add("channels_last", &channels_last, "channels-last (NHWC) teacher and views");
}

void RecoverConfig::apply_recipe(const std::string& name) {
  const RecoverConfig small;
  iterations = small.iterations, lr = small.lr, r_bn = small.r_bn, jitter = small.jitter;
  jitter_signed = small.jitter_signed, batch_size = small.batch_size;
  per_image_augment = small.per_image_augment;
  if (name == "imagenet1k") {  // class mode: batch = IPC; mixed: 100 classes (batch_size 0)
    iterations = 4000, lr = 0.25, r_bn = 0.01, jitter = 32, jitter_signed = false;
  } else if (name == "tiny") {
    iterations = 4000, lr = 0.1, r_bn = 0.05, jitter = 4, jitter_signed = true, batch_size = 100;
  } else if (name != "small" && name != "auto") {
    throw std::invalid_argument("--recipe: unknown recipe '" + name +
                                "' (use auto, imagenet1k, tiny or small)");
  }
  recipe = name;
}

void RecoverConfig::validate() const {
  check_arg(!teacher.empty(), "--teacher", "a teacher checkpoint is required");
  check_arg(!out.empty(), "--out", "an output folder is required");
  check_arg(ipc >= 1, "--ipc", "must be >= 1");
  check_arg(iterations >= 1, "--iterations", "must be >= 1");
  check_arg(lr > 0, "--lr", "must be > 0");
  check_arg(r_bn >= 0, "--r-bn", "must be >= 0");
  check_arg(first_bn_multiplier >= 0, "--first-bn-multiplier", "must be >= 0");
  check_arg(jitter >= 0, "--jitter", "must be >= 0");
  check_arg(batch_size >= 0, "--batch-size", "must be >= 0");
  check_arg(crop_scale_min > 0 && crop_scale_min <= 1, "--crop-scale-min", "must be in (0, 1]");
  check_arg(tv_l2 >= 0 && l2 >= 0, "--tv-l2/--l2", "must be >= 0");
  check_arg(pack >= 0, "--pack", "must be >= 0");
  check_arg(checkpoint_every >= 0, "--checkpoint-every", "must be >= 0");
  check_arg(stall_restarts >= 0, "--stall-restarts", "must be >= 0");
  check_arg(stall_loss > 0, "--stall-loss", "must be > 0");
  check_arg(stall_accuracy >= 0 && stall_accuracy <= 1, "--stall-accuracy", "must be in [0, 1]");
}

json RecoverConfig::identity() const {
  json j = config_json(*this);
  // (the recipe's name too: its values are what count, and "auto" names none)
  for (const char* k :
       {"recipe", "teacher", "out", "classes", "pack", "device", "checkpoint_every"})
    j.erase(k);
  // The TV prior changed from 2 to DeepInversion's 4 neighbour differences: folders made
  // with the old one (tv_l2 > 0) must not be resumed with the new one.
  if (tv_l2 > 0) j["tv_prior"] = "4-neighbour";
  return j;
}

json ClassRecord::to_json() const {
  return {{"label", label},
          {"ce", ce},
          {"bn", bn},
          {"ce_start", ce_start},
          {"bn_start", bn_start},
          {"seconds", seconds},
          {"teacher_accuracy", teacher_accuracy},
          {"restarts", restarts},
          {"converged", converged},
          {"units", units},
          {"skipped", skipped}};
}

ClassRecord ClassRecord::from_json(const json& j) {
  ClassRecord r;
  r.label = j.at("label"), r.ce = j.at("ce"), r.bn = j.at("bn");
  r.ce_start = j.at("ce_start"), r.bn_start = j.at("bn_start"), r.seconds = j.at("seconds");
  r.teacher_accuracy = j.at("teacher_accuracy");
  r.restarts = j.value("restarts", int64_t{0});
  r.converged = j.value("converged", true);
  r.units = j.value("units", json::array());
  r.skipped = j.value("skipped", false);
  return r;
}

const std::vector<Choice<RecoverMode>>& choices(RecoverMode) {
  static const std::vector<Choice<RecoverMode>> table = {{RecoverMode::class_wise, "class"},
                                                         {RecoverMode::mixed, "mixed"}};
  return table;
}

json RecoverResult::to_json() const {
  json cls = json::array();
  for (const auto& c : classes) cls.push_back(c.to_json());
  return {{"recipe", recipe},
          {"seconds", seconds},
          {"setup_seconds", setup_seconds},
          {"iterations_per_second", iterations_per_second},
          {"image_iterations_per_second", image_iterations_per_second},
          {"teacher_top1", teacher_top1},
          {"images", images},
          {"image_bytes", image_bytes},
          {"pack", pack},
          {"restarts", restarts},
          {"units_optimized", units_optimized},
          {"units_outside", units_outside},
          {"unconverged", unconverged},
          {"classes", cls}};
}

std::pair<int64_t, int64_t> RecoverConfig::class_range(int64_t C) const {
  const std::string& spec = classes;
  if (spec.empty()) return {0, C};
  int64_t first = 0, last = 0;
  const auto colon = spec.find(':');
  try {
    check_arg(colon != std::string::npos, "--classes", "expected BEGIN:END");
    first = std::stoll(spec.substr(0, colon));
    last = std::stoll(spec.substr(colon + 1));
  } catch (const std::logic_error&) {
    throw std::invalid_argument("--classes: expected BEGIN:END, got '" + spec + "'");
  }
  check_arg(0 <= first && first < last && last <= C, "--classes",
            "'" + spec + "' is not a range within 0:" + std::to_string(C));
  return {first, last};
}

}  // namespace lpld::recover
