// Exact class-wise BatchNorm statistics (METHOD.md Stage 1, our default): for every BN
// layer, the per-class mean and biased variance (per channel) of the layer's input over
// one full pass of the real training set, teacher in eval mode. Accumulated as per-class
// sums of x and x^2 in float64, so the result does not depend on batch order or size
// (the official code keeps an EMA of batch statistics instead: METHOD.md "Flaws").
#pragma once
#include <memory>

#include "core/progress.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "models/checkpoint.h"

namespace lpld::squeeze {

struct ClassStatsOptions {
  int64_t batch_size = 100;  // small batches run faster on CPU (cache)
  int64_t image_size = 28;
  bool augment = false;  // apply the training crop/flip during the pass (official: on)
  data::CropOptions crop;
  uint64_t seed = 0;
  int workers = 2;
};

models::ClassStats compute_class_stats(models::ClassifierImpl& model,
                                       std::shared_ptr<data::Dataset> dataset,
                                       const data::Normalization& norm,
                                       const ClassStatsOptions& options,
                                       const torch::Device& device, Progress& progress);

// Adds one batch to running per-class sums (exposed for tests): inputs[l] is BN layer l's
// input [N, C, H, W]; sums are float64 [classes, C]; counts float64 [classes].
void accumulate_class_sums(const std::vector<torch::Tensor>& inputs, const torch::Tensor& labels,
                           std::vector<torch::Tensor>& sum, std::vector<torch::Tensor>& sum_sq,
                           torch::Tensor& pixels);

}  // namespace lpld::squeeze
