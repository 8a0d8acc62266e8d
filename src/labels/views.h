// What the views of a label step are made of (METHOD.md Stage 3, FKD's pre-generated views):
// batches of B images in a seeded epoch order, each image a RandomResizedCrop + flip, CutMix
// within a batch. Relabel labels them, a label store's header records them, train replays them
// (or, with online labels, draws them itself): one type for the four places that carry them
// (RelabelConfig, TrainConfig, LabelHeader, the pipeline), so none can drift from the others.
#pragma once
#include <string>
#include <vector>

#include "core/options.h"
#include "data/augment.h"

namespace lpld::labels {

struct ViewOptions {
  int64_t batch_size = 20;  // B: images per label step
  data::CropOptions crop;   // --crop-scale-min is crop.scale_lo
  bool cutmix = true;
  double cutmix_alpha = 1.0;

  // The options batch_size, cutmix (a value sets cutmix_alpha), cutmix_alpha, crop_scale_min;
  // `context` begins their help ("online labels: ").
  void declare(OptionSet& o, const std::string& context = "");
  void validate() const;  // throws invalid_argument naming the option
  bool operator==(const ViewOptions& o) const;
  bool operator!=(const ViewOptions& o) const { return !(*this == o); }
};

// An option whose value here differs from a label store's views.
struct ViewClash {
  std::string option;  // "--batch-size"
  std::string mine, theirs;
};
// The view options `mine` differs in from `store`, among `set` (options_set of the config:
// those set by a flag, a YAML key or a recipe); CutMix's alpha only where CutMix is on.
std::vector<ViewClash> view_clashes(const ViewOptions& mine, const ViewOptions& store,
                                    const json& set);

}  // namespace lpld::labels
