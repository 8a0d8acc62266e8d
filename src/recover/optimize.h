// The inner loop of recover (METHOD.md Stage 2): a group of equal-sized units optimized in
// one batch. Every unit has its own BN target, init and augmentation streams, and the
// teacher is frozen in eval mode, so units never interact: a group gives the same images
// as its units one by one, up to float summation order.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "core/progress.h"
#include "core/rng.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "engine/precision.h"
#include "models/checkpoint.h"
#include "recover/recover.h"
#include "recover/units.h"

namespace lpld::recover {

// BN targets per layer (batchnorms() order), [T, C_l]: class mode, the class statistics
// (T = classes); mixed mode, the teacher's running statistics (T = 1).
struct BnTargets {
  std::vector<torch::Tensor> mean, var;
};
BnTargets bn_targets(const models::Checkpoint& teacher, bool class_mode);

// What every group of a run shares.
struct GroupContext {
  models::ClassifierImpl* teacher = nullptr;  // frozen, eval mode
  const RecoverConfig* config = nullptr;
  BnTargets targets;
  int64_t channels = 0, size = 0;
  data::Normalization norm;
  torch::Tensor lo, hi;  // valid normalized pixel range, [1, C, 1, 1]
  torch::Device device{torch::kCPU};
  engine::Precision precision;  // the teacher's forward under autocast (engine/precision.h)
};
GroupContext make_group_context(const models::Checkpoint& teacher, const RecoverConfig& config,
                                const torch::Device& device);

// One augmented view of a group of K units of b images (METHOD.md Stage 2): a crop + flip
// per unit (or per image), then a circular roll per unit.
struct GroupViews {
  std::vector<data::View> views;                   // K * b
  std::vector<std::pair<int64_t, int64_t>> rolls;  // K (rows, columns)
};
GroupViews draw_views(const RecoverConfig& config, std::vector<Rng>& unit_streams, int64_t b,
                      int64_t size);
// x: [K * b, C, S, S] -> the views rendered and rolled, same shape.
torch::Tensor apply_views(const torch::Tensor& x, const GroupViews& views, int64_t b, int64_t size);

// The weights of the recover loss (METHOD.md Stage 2).
struct LossWeights {
  double r_bn = 0.05;               // of the BN-matching loss
  double first_bn_multiplier = 10;  // of its first layer, on top of r_bn
  double tv_l2 = 0, l2 = 0;         // of the priors (the ImageNet script's; 0 by default)
};
LossWeights loss_weights(const RecoverConfig& config);

// The recover loss of K groups, [K] each: CE (mean within a group) and the BN-matching loss
// against per-group targets (bn_loss.h), total = ce + r_bn * bn (+ the optional priors).
// xin: the augmented batch [K * b, C, S, S]; target: [K * b] classes.
struct GroupLoss {
  torch::Tensor ce, bn, total;
};
GroupLoss group_loss(const GroupContext& ctx, const LossWeights& weights, const torch::Tensor& xin,
                     int64_t K, const torch::Tensor& target,
                     const std::vector<torch::Tensor>& target_mean,
                     const std::vector<torch::Tensor>& target_var);

// Where a group under optimization keeps its state (every config.checkpoint_every iterations);
// the caller removes it once the group's units are saved.
std::string group_state_path(const std::string& out, const std::vector<Unit>& group);

// Optimizes `group` (units with equal `count`) for config.iterations steps; returns one
// result per unit: uint8 images, loss trace (stall.h windows), seconds, and how many saved
// images the teacher assigns to their class. `work_done` counts unit-iterations. A loss that is
// not finite over a trace window is an error (as in squeeze and train).
std::vector<UnitResult> optimize_group(const GroupContext& ctx, const std::vector<Unit>& group,
                                       Progress& progress, int64_t& work_done);

}  // namespace lpld::recover
