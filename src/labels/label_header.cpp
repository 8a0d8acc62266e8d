// LabelHeader (label_store.h): the JSON that describes a store, its record sizes and offsets.
#include <cmath>

#include "core/error.h"
#include "labels/label_store.h"

namespace lpld::labels {

int64_t LabelHeader::step_size(int64_t step) const {
  const int64_t b = step % batches_per_epoch();
  return std::min(batch_size, num_images - b * batch_size);
}

int64_t LabelHeader::views_bytes(int64_t n) const {
  if (!views_stored) return 0;
  // indices u32, crop boxes 4 x f32 and flips u8 per image; CutMix lambda f32, box 4 x u16,
  // partners u16 per image
  return n * (4 + 16 + 1) + (cutmix ? 4 + 8 + 2 * n : 0);
}

int64_t LabelHeader::record_bytes(int64_t n) const {
  return n * codec.row_bytes(num_classes) + views_bytes(n) + (format_version >= 2 ? 8 : 0) + 8;
}

json LabelHeader::to_json() const {
  json j = {{"format", "lpld-labels"},
            {"format_version", format_version},
            {"num_images", num_images},
            {"num_classes", num_classes},
            {"channels", channels},
            {"image_size", image_size},
            {"epochs", epochs},
            {"batch_size", batch_size},
            {"batches_per_epoch", batches_per_epoch()},
            {"total_steps", total_steps()},
            {"steps_kept", steps_kept},
            {"prune_ratio", prune_ratio},
            {"seed", seed},
            {"crop",
             {{"scale", {crop.scale_lo, crop.scale_hi}},
              {"ratio", {crop.ratio_lo, crop.ratio_hi}},
              {"flip", crop.flip}}},
            {"cutmix", cutmix},
            {"cutmix_alpha", cutmix_alpha},
            {"mean", norm.mean},
            {"std", norm.std},
            {"images", images},
            {"labels", labels},
            {"image_set_hash", image_set_hash},
            {"teacher_hash", teacher_hash},
            {"config", config}};
  if (!blas.empty()) j["blas"] = blas;
  if (format_version == 1) {
    j["dtype"] = choice_name(codec.values);
  } else {
    j["codec"] = {{"topk", codec.topk}, {"values", choice_name(codec.values)}};
    j["replay_version"] = replay_version;
    j["views_stored"] = views_stored;
  }
  return j;
}

LabelHeader LabelHeader::from_json(const json& j, const std::string& path) {
  LabelHeader h;
  try {
    check_file(j.at("format") == "lpld-labels", path, "not an lpld label store");
    h.format_version = j.at("format_version");
    check_file(h.format_version == 1 || h.format_version == 2, path,
               "unsupported label store format " + j.at("format_version").dump() +
                   " (this lpld reads formats 1 and 2)");
    h.num_images = j.at("num_images");
    h.num_classes = j.at("num_classes");
    h.channels = j.at("channels");
    h.image_size = j.at("image_size");
    h.epochs = j.at("epochs");
    h.batch_size = j.at("batch_size");
    h.steps_kept = j.at("steps_kept");
    h.prune_ratio = j.at("prune_ratio");
    const auto& values = h.format_version == 1 ? j.at("dtype") : j.at("codec").at("values");
    h.codec.values = parse_choice<LabelValues>(values.get<std::string>(), "logit values");
    if (h.format_version == 1) {
      h.codec.topk = 0;
    } else {
      h.codec.topk = j.at("codec").at("topk");
      h.replay_version = j.at("replay_version");
      h.views_stored = j.at("views_stored");
    }
    h.seed = j.at("seed");
    h.crop.scale_lo = j.at("crop").at("scale").at(0);
    h.crop.scale_hi = j.at("crop").at("scale").at(1);
    h.crop.ratio_lo = j.at("crop").at("ratio").at(0);
    h.crop.ratio_hi = j.at("crop").at("ratio").at(1);
    h.crop.flip = j.at("crop").at("flip");
    h.cutmix = j.at("cutmix");
    h.cutmix_alpha = j.at("cutmix_alpha");
    h.norm.mean = j.at("mean").get<std::vector<float>>();
    h.norm.std = j.at("std").get<std::vector<float>>();
    h.images = j.at("images").get<std::vector<std::string>>();
    h.labels = j.at("labels").get<std::vector<int64_t>>();
    h.image_set_hash = j.at("image_set_hash");
    h.teacher_hash = j.at("teacher_hash");
    h.blas = j.value("blas", std::string());
    h.config = j.at("config");
  } catch (const json::exception& e) {
    fail_file(path, std::string("bad label store header: ") + e.what());
  } catch (const std::invalid_argument& e) {
    fail_file(path, std::string("bad label store header: ") + e.what());
  }
  check_file(h.num_images > 0 && h.num_classes > 1 && h.epochs > 0 && h.batch_size > 0, path,
             "label store header has non-positive sizes");
  check_file(static_cast<int64_t>(h.images.size()) == h.num_images &&
                 static_cast<int64_t>(h.labels.size()) == h.num_images,
             path, "label store header lists the wrong number of images");
  check_file(h.steps_kept >= 0 && h.steps_kept <= h.total_steps(), path,
             "label store keeps more steps than it has");
  try {
    h.codec.validate();
  } catch (const std::invalid_argument& e) {
    fail_file(path, std::string("bad codec: ") + e.what());
  }
  check_file(h.format_version == 2 || (h.codec.topk == 0 && !h.codec.quantized()), path,
             "format 1 stores hold full fp16, bf16 or fp32 logits");
  return h;
}

int64_t steps_for_ratio(double prune_ratio, int64_t total_steps) {
  if (!(prune_ratio >= 0 && prune_ratio < 1))
    throw std::invalid_argument("--prune-ratio: must be in [0, 1), got " +
                                std::to_string(prune_ratio));
  return static_cast<int64_t>(std::floor((1.0 - prune_ratio) * total_steps + 1e-9));
}

uint64_t record_offset(const LabelHeader& h, uint64_t data_offset, int64_t step) {
  const int64_t bpe = h.batches_per_epoch();
  const uint64_t full = h.record_bytes(h.batch_size);
  const uint64_t last = h.record_bytes(h.num_images - (bpe - 1) * h.batch_size);
  const uint64_t epoch_bytes = (bpe - 1) * full + last;
  const int64_t e = step / bpe, b = step % bpe;
  return data_offset + e * epoch_bytes + b * full;
}

}  // namespace lpld::labels
