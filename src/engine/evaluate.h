// Top-1 / top-5 accuracy of a classifier on a real labelled set.
#pragma once
#include <memory>

#include "core/dist.h"
#include "core/options.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "models/classifier.h"

namespace lpld::engine {

struct EvalResult {
  double top1 = 0, top5 = 0;  // percent
  int64_t images = 0;
  double seconds = 0, images_per_second = 0;
};

// Evaluates in eval mode without gradients, at `image_size` (centre view when the set's
// images have another size). Small batches are faster on CPU (they stay in cache:
// bench/bench_kernels), hence the default of 100. With `dist`, each rank evaluates every N-th
// batch and the counts are added over the ranks (a collective: every rank calls it).
EvalResult evaluate(models::ClassifierImpl& model, std::shared_ptr<data::Dataset> dataset,
                    const data::Normalization& norm, int64_t image_size,
                    const torch::Device& device, Progress& progress, int64_t batch_size = 100,
                    Dist* dist = nullptr);

// `lpld eval`: a checkpoint on a labelled set.
struct EvalConfig {
  std::string model, data, device = "cpu";
  int64_t batch_size = 100;
  void declare(OptionSet& o);
  void validate() const;
};
json to_json(const EvalResult& r);
// Loads the checkpoint, checks that the data fits it (classes, channels), evaluates.
EvalResult evaluate_checkpoint(const EvalConfig& config, Progress& progress);

}  // namespace lpld::engine
