// LabelHeader (label_store.h): the JSON that describes a store, its record sizes and offsets.
#include "core/error.h"
#include "labels/label_store.h"

namespace lpld::labels {

int64_t LabelHeader::step_size(int64_t step) const {
  const int64_t b = step % batches_per_epoch();
  return std::min(views.batch_size, num_images - b * views.batch_size);
}

int64_t LabelHeader::views_bytes(int64_t n) const {
  if (!views_stored) return 0;
  // indices u32, crop boxes 4 x f32 and flips u8 per image; CutMix lambda f32, box 4 x u16,
  // partners u16 per image
  return n * (4 + 16 + 1) + (views.cutmix ? 4 + 8 + 2 * n : 0);
}

int64_t LabelHeader::record_bytes(int64_t n) const {
  return n * codec.row_bytes(num_classes) + views_bytes(n) + (format_version >= 2 ? 8 : 0) + 8;
}

int64_t LabelHeader::image_labels_bytes() const {
  return image_labels ? num_images * codec.row_bytes(num_classes) + 8 : 0;
}

json LabelHeader::to_json() const {
  json j = {{"format", "lpld-labels"},
            {"format_version", format_version},
            {"num_images", num_images},
            {"num_classes", num_classes},
            {"channels", channels},
            {"image_size", image_size},
            {"epochs", epochs},
            {"batch_size", views.batch_size},
            {"batches_per_epoch", batches_per_epoch()},
            {"total_steps", total_steps()},
            {"steps_kept", steps_kept},
            {"prune_ratio", prune_ratio},
            {"seed", seed},
            {"crop",
             {{"scale", {views.crop.scale_lo, views.crop.scale_hi}},
              {"ratio", {views.crop.ratio_lo, views.crop.ratio_hi}},
              {"flip", views.crop.flip}}},
            {"cutmix", views.cutmix},
            {"cutmix_alpha", views.cutmix_alpha},
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
    if (image_labels) j["image_labels"] = true;  // (absent: stores before the table existed)
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
    h.views.batch_size = j.at("batch_size");
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
      h.image_labels = j.value("image_labels", false);
    }
    h.seed = j.at("seed");
    auto& crop = h.views.crop;
    crop.scale_lo = j.at("crop").at("scale").at(0);
    crop.scale_hi = j.at("crop").at("scale").at(1);
    crop.ratio_lo = j.at("crop").at("ratio").at(0);
    crop.ratio_hi = j.at("crop").at("ratio").at(1);
    crop.flip = j.at("crop").at("flip");
    h.views.cutmix = j.at("cutmix");
    h.views.cutmix_alpha = j.at("cutmix_alpha");
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
  check_file(h.num_images > 0 && h.num_classes > 1 && h.epochs > 0 && h.views.batch_size > 0, path,
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

uint64_t record_offset(const LabelHeader& h, uint64_t data_offset, int64_t step) {
  const int64_t bpe = h.batches_per_epoch();
  const uint64_t full = h.record_bytes(h.views.batch_size);
  const uint64_t last = h.record_bytes(h.num_images - (bpe - 1) * h.views.batch_size);
  const uint64_t epoch_bytes = (bpe - 1) * full + last;
  const int64_t e = step / bpe, b = step % bpe;
  return data_offset + e * epoch_bytes + b * full;
}

}  // namespace lpld::labels
