#include "labels/views.h"

#include <fmt/format.h>

#include "core/error.h"

namespace lpld::labels {

void ViewOptions::declare(OptionSet& o, const std::string& context) {
  o.add("batch_size", &batch_size, context + "label batch size B (images per step)")
      .add("cutmix", &cutmix, context + "CutMix within each label batch")
      .value_sets("cutmix_alpha")
      .add("cutmix_alpha", &cutmix_alpha, context + "CutMix Beta(alpha, alpha)")
      .add("crop_scale_min", &crop.scale_lo, context + "RandomResizedCrop minimum area fraction");
}

void ViewOptions::validate() const {
  check_arg(batch_size >= 1, "--batch-size", "must be >= 1");
  check_arg(cutmix_alpha > 0, "--cutmix-alpha", "must be > 0");
  check_arg(crop.scale_lo > 0 && crop.scale_lo <= 1, "--crop-scale-min", "must be in (0, 1]");
}

bool ViewOptions::operator==(const ViewOptions& o) const {
  return batch_size == o.batch_size && cutmix == o.cutmix && cutmix_alpha == o.cutmix_alpha &&
         crop.scale_lo == o.crop.scale_lo && crop.scale_hi == o.crop.scale_hi &&
         crop.ratio_lo == o.crop.ratio_lo && crop.ratio_hi == o.crop.ratio_hi &&
         crop.flip == o.crop.flip;
}

std::vector<ViewClash> view_clashes(const ViewOptions& mine, const ViewOptions& store,
                                    const json& set) {
  std::vector<ViewClash> out;
  const auto clash = [&](const char* key, bool differs, const char* option, std::string a,
                         std::string b) {
    if (set.contains(key) && differs) out.push_back({option, std::move(a), std::move(b)});
  };
  const auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  clash("batch_size", mine.batch_size != store.batch_size, "--batch-size",
        std::to_string(mine.batch_size), std::to_string(store.batch_size));
  clash("cutmix", mine.cutmix != store.cutmix, "--cutmix", flag(mine.cutmix), flag(store.cutmix));
  clash("cutmix_alpha", store.cutmix && mine.cutmix_alpha != store.cutmix_alpha, "--cutmix-alpha",
        fmt::format("{}", mine.cutmix_alpha), fmt::format("{}", store.cutmix_alpha));
  clash("crop_scale_min", mine.crop.scale_lo != store.crop.scale_lo, "--crop-scale-min",
        fmt::format("{}", mine.crop.scale_lo), fmt::format("{}", store.crop.scale_lo));
  return out;
}

}  // namespace lpld::labels
