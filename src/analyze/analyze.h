// The paper's analysis (METHOD.md "Analysis the paper uses"): within-class similarity --
// the mean pairwise cosine similarity of a network's penultimate features between images
// of the same class (lower = more diverse) -- for a synthetic set and for an equal-sized
// sample of real images; the network's top-1 on the synthetic set; and the storage table.
#pragma once
#include <string>
#include <vector>

#include "core/options.h"
#include "core/progress.h"

namespace lpld::analyze {

struct AnalyzeConfig {
  std::string model;                // checkpoint whose features are compared (e.g. the teacher)
  std::string images;               // synthetic image folder
  std::string real;                 // real labelled set to sample the same number per class from
  std::vector<std::string> labels;  // label stores to list in the storage table
  uint64_t seed = 0;                // real sample
  std::string device = "cpu";

  void declare(OptionSet& o);
  void validate() const;
};

struct Similarity {
  double overall = 0;             // mean over classes of the per-class mean
  std::vector<double> per_class;  // mean pairwise cosine within each class
};

struct AnalyzeResult {
  Similarity synthetic, real;
  double synthetic_top1 = 0;
  int64_t images = 0, image_bytes = 0;
  json storage = json::array();  // [{file, prune_ratio, steps_kept, label_bytes, ratio_to_images}]
  json to_json() const;
};

// features: [N, F]; labels: [N]. Mean over classes of the mean cosine similarity of all
// pairs (i != j) of images of that class.
Similarity within_class_similarity(const torch::Tensor& features, const torch::Tensor& labels,
                                   int64_t num_classes);

AnalyzeResult analyze(const AnalyzeConfig& config, Progress& progress);

}  // namespace lpld::analyze
