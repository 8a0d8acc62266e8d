// `lpld train` (core/stage.h).
#include "core/stage.h"

#include <fmt/format.h>

#include "train/student.h"

namespace lpld {
namespace {

std::string train_summary(const train::TrainConfig& c, const train::TrainResult& r,
                          const DistEnv&) {
  return fmt::format("student {} top-1 {:.2f}% top-5 {:.2f}% ({} steps, {:.1f}s, {:.0f} img/s){}",
                     c.arch, r.top1, r.top5, r.steps, r.seconds, r.images_per_second,
                     r.reused ? " [reused]" : "");
}

}  // namespace

const StageDescriptor& train_stage() {
  static const StageDescriptor d = make_stage<train::TrainConfig, train::TrainResult>(
      "train", "train a student on the synthetic set with pruned soft labels (Stage 4)",
      "auto (from the labels), imagenet1k, tiny or small", /*distributed=*/true,
      train::train_student, train_summary);
  return d;
}

}  // namespace lpld
