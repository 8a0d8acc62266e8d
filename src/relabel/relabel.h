// Stage 3 (METHOD.md): FKD-style soft labels for the synthetic set, generated only for the
// label pool (the first floor((1-R) * S) steps), written into one label store.
#pragma once
#include <string>

#include "core/options.h"
#include "core/progress.h"
#include "engine/precision.h"
#include "labels/codec.h"
#include "labels/views.h"

namespace lpld::relabel {

struct RelabelConfig {
  // auto (default): from the teacher's resolution when the run starts (core/options.h), options
  // set away from their defaults kept; or small (batch 20), tiny (batch 64, 100 epochs, no
  // CutMix) or imagenet1k (batch 128): the views of the matching student recipe (METHOD.md).
  std::string recipe = "auto";
  std::string teacher, images, out;
  int64_t epochs = 300;
  labels::ViewOptions views;  // batch size, crop, CutMix (labels/views.h)
  double prune_ratio = 0;
  labels::LabelValues logits = labels::LabelValues::fp16;  // labels/codec.h
  int64_t topk = 0;          // keep the k largest logits of each row (0: all; LPQLD's MR-k)
  bool store_views = false;  // the views in every record, for tools without lpld's streams
  // The fallback table (issue #30): the teacher's logits for each image's whole view, one codec
  // row per image, for training steps whose labels were pruned (train --fallback-share).
  bool image_labels = false;
  uint64_t seed = 0;
  int64_t forward_batch = 0;  // images per teacher forward (0: automatic)
  std::string device = "cpu";
  engine::Amp amp = engine::Amp::off;  // engine/precision.h (the teacher's forward)
  bool channels_last = false;          // NHWC teacher and views

  void declare(OptionSet& o);
  void apply_recipe(const std::string& name);
  void validate() const;
  // The options that determine the labels (not device, forward batch or output path):
  // what a label store records as its config, and what reuse compares.
  json identity() const;
};

struct RelabelResult {
  std::string recipe;  // the recipe the run used ("auto" resolved)
  int64_t total_steps = 0, steps_kept = 0, images = 0, labelled_views = 0;
  double seconds = 0, views_per_second = 0;
  double setup_seconds = 0;  // before the first unit of work (core/clock.h)
  uint64_t label_bytes = 0, logit_bytes = 0, metadata_bytes = 0;
  int64_t image_bytes = 0;
  json bytes = json::object();  // by part, and the compression against the 1x fp16 store
  std::string out;
  json to_json() const;
};

RelabelResult relabel(const RelabelConfig& config, Progress& progress);

}  // namespace lpld::relabel
