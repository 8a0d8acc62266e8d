// Exact class-wise BatchNorm statistics (METHOD.md Stage 1, our default): for every BN
// layer, the per-class mean and biased variance (per channel) of the layer's input over
// one full pass of the real training set, teacher in eval mode. Accumulated as per-class
// sums of x and x^2 in float64, so the result does not depend on batch order or size
// (the official code keeps an EMA of batch statistics instead: METHOD.md "Flaws").
#pragma once
#include <functional>
#include <map>
#include <memory>

#include "core/dist.h"
#include "core/progress.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "models/checkpoint.h"

namespace lpld::squeeze {

class ClassStatsAccumulator;

struct ClassStatsOptions {
  int64_t batch_size = 100;  // small batches run faster on CPU (cache)
  int64_t image_size = 28;
  bool augment = false;  // apply the training crop/flip during the pass (official: on)
  data::CropOptions crop;
  uint64_t seed = 0;
  int workers = 0;  // 0: one per core
  // Resume: the sums of a killed pass after its first `start_batch` batches.
  int64_t start_batch = 0;
  const std::map<std::string, torch::Tensor>* resume_sums = nullptr;
  // Called every `checkpoint_every` batches with the batches done and the sums so far.
  std::function<void(int64_t, const ClassStatsAccumulator&)> checkpoint;
  int64_t checkpoint_every = 500;
  // A distributed run: each rank passes over every N-th batch and the sums are added over the
  // ranks (so they equal one process's up to float64 summation order). Not resumable.
  Dist* dist = nullptr;
};

models::ClassStats compute_class_stats(models::ClassifierImpl& model,
                                       std::shared_ptr<data::Dataset> dataset,
                                       const data::Normalization& norm,
                                       const ClassStatsOptions& options,
                                       const torch::Device& device, Progress& progress);

// Running per-class sums of x and x^2 of every BN layer's input (float64), batch by batch;
// compute_class_stats feeds it one pass of the data, tests feed it single batches.
class ClassStatsAccumulator {
 public:
  ClassStatsAccumulator(models::ClassifierImpl& model, int64_t classes,
                        const torch::Device& device);
  // inputs[l]: BN layer l's input [N, C_l, H, W] (batchnorms() order); labels: int64 [N].
  void add(const std::vector<torch::Tensor>& inputs, const torch::Tensor& labels);
  // Per-class mean and biased variance [classes, C_l] (float32) by BN name, and counts.
  models::ClassStats finish() const;
  // The running sums as named tensors ("sum.<l>", "sum_sq.<l>", "hw", "samples"), and back.
  std::map<std::string, torch::Tensor> sums() const;
  void restore(const std::map<std::string, torch::Tensor>& sums, const std::string& path);
  // Adds every rank's sums (a collective: all ranks call it).
  void sum_over_ranks(Dist& dist);

 private:
  std::vector<std::string> names_;
  std::vector<torch::Tensor> sum_, sum_sq_;
  std::vector<int64_t> hw_;
  torch::Tensor samples_;
};

}  // namespace lpld::squeeze
