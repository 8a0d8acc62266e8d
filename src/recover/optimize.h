// The inner loop of recover (METHOD.md Stage 2): a group of equal-sized units optimized in
// one batch. Every unit has its own BN target, init and augmentation streams, and the
// teacher is frozen in eval mode, so units never interact: a group gives the same images
// as its units one by one, up to float summation order.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "core/progress.h"
#include "data/dataset.h"
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
};
GroupContext make_group_context(const models::Checkpoint& teacher, const RecoverConfig& config,
                                const torch::Device& device);

// Optimizes `group` (units with equal `count`) for config.iterations steps; returns one
// result per unit: uint8 images, loss trace (stall.h windows), seconds, and how many saved
// images the teacher assigns to their class. `work_done` counts unit-iterations.
std::vector<UnitResult> optimize_group(const GroupContext& ctx, const std::vector<Unit>& group,
                                       Progress& progress, int64_t& work_done);

}  // namespace lpld::recover
