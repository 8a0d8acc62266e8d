// Stage 1 (METHOD.md): train a teacher on the real training set (SGD + momentum, cosine
// with optional linear warm-up, RandomResizedCrop + flip), evaluate it, gather exact
// class-wise BN statistics, and save one checkpoint (models/checkpoint.h).
#pragma once
#include <string>

#include "core/options.h"
#include "core/progress.h"
#include "engine/precision.h"

namespace lpld::squeeze {

// Teacher recipes (`--recipe`; flags override them). The teacher is a means: a recipe is
// chosen by what the students of its synthetic images reach, not by its own top-1
// (bench/results/teacher-recipes.md).
//   small       up to 32 px, grey (the fields' defaults below): 6 epochs, batch 64, crop (0.8, 1)
//   official    up to 32 px, colour: the authors' recipe of the reference runs
//               (../shared/reference): batch 256, lr 0.05, crop scale (0.5, 1), 15 epochs
//               (their Fashion-MNIST run: 5)
//   tiny        64 px, Tiny-ImageNet as SRe2L's teacher was trained (torchvision reference):
//               50 epochs, batch 256, SGD lr 0.2, wd 1e-4, 5 warm-up epochs, crop (0.08, 1)
//   imagenet1k  224 px, torchvision's ResNet recipe: 90 epochs, batch 256, lr 0.1, wd 1e-4,
//               crop (0.08, 1); cosine where torchvision's V1 weights used steps
//   auto        (default) up to 32 px small (one channel) or official (colour), tiny up to
//               64 px, imagenet1k above; recipe options set away from their defaults
//               override the chosen recipe's values
struct SqueezeConfig {
  std::string recipe = "auto";
  std::string data = "fashion-mnist:train";
  std::string val = "fashion-mnist:test";
  std::string arch = "convnet-d3-w64";
  std::string out;   // checkpoint path (required)
  std::string init;  // start from this checkpoint (epochs 0: only gather class stats)
  // The small recipe (grey data up to 32 px; bench/results/teacher-recipes.md): 6 epochs of
  // batch 64, mild crops.
  int64_t epochs = 6;
  int64_t batch_size = 64;
  double lr = 0.05;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  int64_t warmup_epochs = 0;
  double crop_scale_min = 0.8;  // RandomResizedCrop scale (min, 1)
  bool flip = true;
  int64_t image_size = 0;      // 0: the dataset's own size (224 for varying folders)
  std::string norm;            // by name or MEAN,.../STD,... ("": the data's, data/dataset.h)
  bool stats_augment = false;  // crop/flip during the class-statistics pass
  bool class_stats = true;
  uint64_t seed = 0;
  std::string device = "cpu";
  engine::Amp amp = engine::Amp::off;  // engine/precision.h
  bool channels_last = false;          // NHWC model and inputs
  int64_t workers = 0;                 // decoding threads for streaming sets (0: one per core)
  int64_t checkpoint_every = 1;        // epochs between resume states (squeeze/resume.h)

  void declare(OptionSet& o);
  void apply_recipe(const std::string& name);  // sets `recipe` and its options
  void validate() const;                       // throws invalid_argument naming the option
  // "auto" resolved for data of `image_size` px and `channels` channels (other recipes:
  // unchanged); `note` says which recipe options were set over the recipe.
  SqueezeConfig resolved(int64_t image_size, int64_t channels, std::string* note = nullptr) const;
};

struct SqueezeResult {
  std::string recipe;  // the recipe the teacher was trained with (auto resolved)
  double top1 = 0, top5 = 0;
  double train_seconds = 0, stats_seconds = 0, eval_seconds = 0, seconds = 0;
  double setup_seconds = 0;           // before the first unit of work (core/clock.h)
  double images_per_second = 0;       // training, data loading included
  double step_images_per_second = 0;  // forward+backward+update only
  int64_t train_images = 0, num_classes = 0;
  int64_t resumed_from_epoch = 0;  // epochs a killed run's resume state had done
  std::string checkpoint, checkpoint_hash;
  json to_json() const;
};

SqueezeResult squeeze(const SqueezeConfig& config, Progress& progress);

}  // namespace lpld::squeeze
