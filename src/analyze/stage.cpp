// `lpld analyze` (core/stage.h).
#include "core/stage.h"

#include <fmt/format.h>

#include "analyze/analyze.h"

namespace lpld {
namespace {

std::string analyze_summary(const analyze::AnalyzeConfig&, const analyze::AnalyzeResult& r,
                            const DistEnv&) {
  std::string s = fmt::format("within-class similarity: synthetic {:.4f}", r.synthetic.overall);
  if (!r.real.per_class.empty()) s += fmt::format(", real {:.4f}", r.real.overall);
  s += fmt::format("\ntop-1 of the model on the synthetic set: {:.2f}%\nimages: {} ({} bytes)",
                   r.synthetic_top1, r.images, r.image_bytes);
  for (const auto& st : r.storage)
    s += fmt::format("\nlabels {}: R {} ({} steps) {} bytes, {:.2f}x the images",
                     st["file"].get<std::string>(), st["prune_ratio"].get<double>(),
                     st["steps_kept"].get<int64_t>(), st["label_bytes"].get<uint64_t>(),
                     st["labels_to_images"].get<double>());
  return s;
}

}  // namespace

const StageDescriptor& analyze_stage() {
  static const StageDescriptor d = make_stage<analyze::AnalyzeConfig, analyze::AnalyzeResult>(
      "analyze", "within-class similarity, top-1 on the synthetic set, storage", "",
      /*distributed=*/false, analyze::analyze, analyze_summary);
  return d;
}

}  // namespace lpld
