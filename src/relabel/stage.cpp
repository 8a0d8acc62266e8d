// `lpld relabel` (core/stage.h).
#include "core/stage.h"

#include <fmt/format.h>

#include "relabel/relabel.h"

namespace lpld {
namespace {

std::string relabel_summary(const relabel::RelabelConfig&, const relabel::RelabelResult& r,
                            const DistEnv& env) {
  if (env.rank > 0)
    return fmt::format("relabel {}: its share done in {:.1f}s", env.where(), r.seconds);
  return fmt::format(
      "relabel: {} of {} steps, {} views in {:.1f}s ({:.0f} views/s); "
      "{} label bytes ({} logits, {} metadata); images {} bytes -> {}",
      r.steps_kept, r.total_steps, r.labelled_views, r.seconds, r.views_per_second, r.label_bytes,
      r.logit_bytes, r.metadata_bytes, r.image_bytes, r.out);
}

}  // namespace

const StageDescriptor& relabel_stage() {
  static const StageDescriptor d = make_stage<relabel::RelabelConfig, relabel::RelabelResult>(
      "relabel", "soft labels for the label pool, into one label store (Stage 3)",
      "auto (from the teacher), imagenet1k, tiny or small", /*distributed=*/true, relabel::relabel,
      relabel_summary);
  return d;
}

}  // namespace lpld
