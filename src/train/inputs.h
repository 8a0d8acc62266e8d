// What a student run reads, opened and checked before any training (METHOD.md Stage 4):
// the synthetic image set, the label store (or, for online labels, the teacher and a header
// describing the views it labels), the label pool, and the real validation set.
#pragma once
#include <memory>
#include <optional>

#include "core/progress.h"
#include "labels/image_set.h"
#include "labels/label_pool.h"
#include "labels/label_store.h"
#include "models/checkpoint.h"
#include "train/student.h"

namespace lpld::train {

struct TrainInputs {
  TrainConfig config;  // the run's: `recipe: auto` resolved, a store's views in place
  labels::ImageSet set;
  std::unique_ptr<labels::LabelStore> store;  // stored labels
  std::optional<models::Checkpoint> teacher;  // online labels
  labels::LabelHeader header;                 // the store's, or the online views'
  labels::PoolSpec pool;
  labels::LabelCodec::Rows image_rows;  // the store's fallback table (with a fallback share)
  std::shared_ptr<data::Dataset> val;
  bool online() const { return teacher.has_value(); }
};

// Throws invalid_argument naming the option when the inputs do not fit together. Logs what
// `recipe: auto` resolved to.
TrainInputs open_inputs(const TrainConfig& requested, const torch::Device& device,
                        Progress& progress);

// What makes two runs the same run (config without device / output knobs, the label header's
// hash, the image set's): a finished run in `out` with this identity is reused.
json run_identity(const TrainConfig& config, const TrainInputs& in);

}  // namespace lpld::train
