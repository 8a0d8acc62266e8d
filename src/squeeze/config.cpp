// SqueezeConfig: options, recipes, validation; and SqueezeResult's JSON.
#include "core/error.h"
#include "models/registry.h"
#include "squeeze/squeeze.h"

namespace lpld::squeeze {

void SqueezeConfig::declare(OptionSet& o) {
  o.add("recipe", &recipe, "teacher recipe: auto, small, official, tiny or imagenet1k")
      .add("data", &data, "training set spec")
      .add("val", &val, "validation set spec")
      .add("arch", &arch, "teacher architecture (convnet-dD-wW, resnet18/34/50[-small|-imagenet])")
      .add("out", &out, "checkpoint file to write")
      .add("init", &init, "start from this checkpoint instead of a fresh model")
      .add("epochs", &epochs, "training epochs (0 with --init: only gather class statistics)")
      .add("batch_size", &batch_size, "training batch size")
      .add("lr", &lr, "peak SGD learning rate")
      .add("momentum", &momentum, "SGD momentum")
      .add("weight_decay", &weight_decay, "SGD weight decay")
      .add("warmup_epochs", &warmup_epochs, "linear warm-up epochs before the cosine")
      .add("crop_scale_min", &crop_scale_min, "RandomResizedCrop minimum area fraction")
      .add("flip", &flip, "random horizontal flip")
      .add("image_size", &image_size, "training resolution (0: the dataset's)")
      .add("norm", &norm,
           "normalization: imagenet, cifar10, cifar100, mnist, fashion-mnist or MEAN,.../STD,... "
           "(default: the data set's standard one, else estimated from the images)")
      .add("stats_augment", &stats_augment, "augment during the class-statistics pass")
      .add("class_stats", &class_stats, "gather class-wise BN statistics")
      .add("seed", &seed, "random seed")
      .add("device", &device, "cpu, cuda or cuda:N")
      .add("amp", &amp, "mixed precision: off, bf16 or fp16 (autocast; fp16 with loss scaling)")
      .add("channels_last", &channels_last, "channels-last (NHWC) model and inputs")
      .add("workers", &workers, "decoding threads for streaming datasets (0: one per core)")
      .add("checkpoint_every", &checkpoint_every, "epochs between resume states");
}

void SqueezeConfig::apply_recipe(const std::string& name) {
  const SqueezeConfig small;
  epochs = small.epochs, batch_size = small.batch_size, lr = small.lr;
  momentum = small.momentum, weight_decay = small.weight_decay;
  warmup_epochs = small.warmup_epochs, crop_scale_min = small.crop_scale_min;
  if (name == "small" || name == "auto") {
  } else if (name == "official") {
    epochs = 15, batch_size = 256, lr = 0.05, momentum = 0.9, weight_decay = 5e-4;
    warmup_epochs = 0, crop_scale_min = 0.5;
  } else if (name == "tiny") {
    epochs = 50, batch_size = 256, lr = 0.2, momentum = 0.9, weight_decay = 1e-4;
    warmup_epochs = 5, crop_scale_min = 0.08;
  } else if (name == "imagenet1k") {
    epochs = 90, batch_size = 256, lr = 0.1, momentum = 0.9, weight_decay = 1e-4;
    warmup_epochs = 0, crop_scale_min = 0.08;
  } else {
    throw std::invalid_argument("--recipe: unknown teacher recipe '" + name +
                                "' (use auto, small, official, tiny or imagenet1k)");
  }
  recipe = name;
}

// The recipe "auto" picks for data of `size` px and `channels` channels. Up to 32 px the
// choice is measured by students, not by the teacher's top-1 (bench/teacher_recipes_findings.md):
// on Fashion-MNIST the small recipe's students beat the official recipe's by 6.8 points, on
// CIFAR-10 the official recipe's beat the small one's by 8.6.
namespace {
std::string auto_recipe(int64_t size, int64_t channels) {
  if (size <= 32) return channels == 1 ? "small" : "official";
  return size <= 64 ? "tiny" : "imagenet1k";
}
}  // namespace

SqueezeConfig SqueezeConfig::resolved(int64_t size, int64_t channels, std::string* note) const {
  if (recipe != "auto") return *this;
  SqueezeConfig r = *this;
  const std::string set = apply_recipe_keeping_set(r, auto_recipe(size, channels));
  if (note && !set.empty())
    *note = fmt::format("squeeze: the '{}' recipe for {} px, {} channel(s), with {} as set",
                        r.recipe, size, channels, set);
  return r;
}

void SqueezeConfig::validate() const {
  check_arg(!out.empty(), "--out", "a checkpoint path is required");
  check_arg(epochs >= 0, "--epochs", "must be >= 0");
  check_arg(epochs > 0 || !init.empty(), "--epochs", "0 epochs needs --init");
  check_arg(batch_size >= 1, "--batch-size", "must be >= 1");
  check_arg(lr > 0, "--lr", "must be > 0");
  check_arg(momentum >= 0 && momentum < 1, "--momentum", "must be in [0, 1)");
  check_arg(weight_decay >= 0, "--weight-decay", "must be >= 0");
  check_arg(warmup_epochs >= 0, "--warmup-epochs", "must be >= 0");
  check_arg(crop_scale_min > 0 && crop_scale_min <= 1, "--crop-scale-min", "must be in (0, 1]");
  check_arg(image_size >= 0, "--image-size", "must be >= 0");
  check_arg(workers >= 0, "--workers", "must be >= 0 (0: one per core)");
  check_arg(checkpoint_every >= 1, "--checkpoint-every", "must be >= 1");
}

json SqueezeResult::to_json() const {
  return {{"recipe", recipe},
          {"top1", top1},
          {"top5", top5},
          {"seconds", seconds},
          {"setup_seconds", setup_seconds},
          {"train_seconds", train_seconds},
          {"stats_seconds", stats_seconds},
          {"eval_seconds", eval_seconds},
          {"images_per_second", images_per_second},
          {"step_images_per_second", step_images_per_second},
          {"train_images", train_images},
          {"num_classes", num_classes},
          {"resumed_from_epoch", resumed_from_epoch},
          {"checkpoint", checkpoint},
          {"checkpoint_hash", checkpoint_hash}};
}

}  // namespace lpld::squeeze
