// `lpld labels info | verify | steps`: what a label store holds, whether every record is
// intact, and each stored step described (for analysis scripts).
#pragma once
#include <string>

#include "core/options.h"

namespace lpld::labels {

struct InspectConfig {
  std::string file;  // the label store
  std::string out;   // steps: JSON-lines file to write ("" = return the text)
  void declare(OptionSet& o);
  void validate() const;
};

// Header summary and bytes by part: images, classes, image_size, epochs, batch_size,
// batches_per_epoch, steps_kept, total_steps, prune_ratio, format_version, codec {topk,
// values}, replay_version, views_stored, seed, cutmix_alpha (null without CutMix), bytes
// (LabelStore::bytes_by_part: by part, and the compression against the 1x fp16 store).
json store_info(const InspectConfig& config);
// Checks every record's checksum (throws runtime_error at the first damaged one); returns
// {steps, bytes}.
json verify_store(const InspectConfig& config);
// One JSON line per stored step (replay.h describe_step); written to config.out when set,
// else returned.
std::string describe_steps(const InspectConfig& config);

}  // namespace lpld::labels
