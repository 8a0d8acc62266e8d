#include "labels/inspect.h"

#include "core/error.h"
#include "labels/label_store.h"
#include "labels/replay.h"

namespace lpld::labels {

void InspectConfig::declare(OptionSet& o) {
  o.add("file", &file, "label store").add("out", &out, "file to write (default: standard output)");
}

void InspectConfig::validate() const {
  check_arg(!file.empty(), "file", "a label store is required");
}

json store_info(const InspectConfig& config) {
  config.validate();
  LabelStore s(config.file);
  const auto& h = s.header();
  return {{"file", config.file},
          {"images", h.num_images},
          {"classes", h.num_classes},
          {"image_size", h.image_size},
          {"epochs", h.epochs},
          {"batch_size", h.views.batch_size},
          {"batches_per_epoch", h.batches_per_epoch()},
          {"steps_kept", h.steps_kept},
          {"total_steps", h.total_steps()},
          {"prune_ratio", h.prune_ratio},
          {"format_version", h.format_version},
          {"codec", {{"topk", h.codec.topk}, {"values", choice_name(h.codec.values)}}},
          {"replay_version", h.replay_version},
          {"views_stored", h.views_stored},
          {"seed", h.seed},
          {"cutmix_alpha", h.views.cutmix ? json(h.views.cutmix_alpha) : json()},
          {"bytes", s.bytes_by_part()}};
}

json verify_store(const InspectConfig& config) {
  config.validate();
  LabelStore s(config.file);
  s.verify();
  return {{"file", config.file}, {"steps", s.header().steps_kept}, {"bytes", s.file_bytes()}};
}

std::string describe_steps(const InspectConfig& config) {
  config.validate();
  LabelStore s(config.file);
  const auto& h = s.header();
  std::string text;
  StepPlanner planner(h);
  for (int64_t step = 0; step < h.steps_kept; ++step)
    text += describe_step(h, planner.plan(step)).dump() + "\n";
  if (!config.out.empty()) write_file_atomic(config.out, text);
  return text;
}

}  // namespace lpld::labels
