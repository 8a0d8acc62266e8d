// `lpld squeeze` (core/stage.h).
#include "core/stage.h"

#include <fmt/format.h>

#include "squeeze/squeeze.h"

namespace lpld {
namespace {

std::string squeeze_summary(const squeeze::SqueezeConfig& c, const squeeze::SqueezeResult& r,
                            const DistEnv&) {
  return fmt::format(
      "teacher {} ({} recipe) top-1 {:.2f}% top-5 {:.2f}%  train {:.1f}s ({:.0f} img/s)  "
      "class stats {:.1f}s  -> {}",
      c.arch, r.recipe, r.top1, r.top5, r.train_seconds, r.images_per_second, r.stats_seconds,
      r.checkpoint);
}

}  // namespace

const StageDescriptor& squeeze_stage() {
  static const StageDescriptor d = make_stage<squeeze::SqueezeConfig, squeeze::SqueezeResult>(
      "squeeze", "train a teacher, evaluate it, gather class-wise BN statistics (Stage 1)",
      "auto, small, official, tiny or imagenet1k", /*distributed=*/true, squeeze::squeeze,
      squeeze_summary);
  return d;
}

}  // namespace lpld
