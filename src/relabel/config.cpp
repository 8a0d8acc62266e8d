// RelabelConfig: options, recipes, validation, identity; RelabelResult's JSON.
#include "core/error.h"
#include "labels/label_pool.h"
#include "relabel/relabel.h"

namespace lpld::relabel {

void RelabelConfig::declare(OptionSet& o) {
  o.add("recipe", &recipe, "auto (from the teacher's resolution), small, tiny or imagenet1k")
      .add("teacher", &teacher, "teacher checkpoint")
      .add("images", &images, "synthetic image folder from recover")
      .add("out", &out, "label store file to write")
      .add("epochs", &epochs, "relabel epochs E (= student training epochs)")
      .add("prune_ratio", &prune_ratio, "R: keep the first floor((1-R) * E * batches) steps");
  views.declare(o);
  o.add("logits", &logits,
        "stored logit values: float as they are, int8 / int4 with a scale and offset per row, "
        "or int8-max / int4-max / int2-max below the row's maximum with a one-byte scale")
      .add("topk", &topk, "keep only the k largest logits of each row and their classes (0: all)")
      .add("store_views", &store_views,
           "store each step's views (indices, crops, flips, CutMix) explicitly")
      .add("image_labels", &image_labels,
           "also store each image's labels at its whole view (one row per image), for training "
           "steps whose labels were pruned (train --fallback-share)")
      .add("seed", &seed, "random seed of the views")
      .add("forward_batch", &forward_batch, "images per teacher forward (0: automatic)")
      .add("device", &device, "cpu, cuda or cuda:N")
      .add("amp", &amp, "the teacher's forward in mixed precision: off, bf16 or fp16 (autocast)")
      .add("channels_last", &channels_last, "channels-last (NHWC) teacher and views");
}

void RelabelConfig::apply_recipe(const std::string& name) {
  const RelabelConfig small;
  epochs = small.epochs, views.batch_size = small.views.batch_size;
  views.cutmix = small.views.cutmix;
  if (name == "imagenet1k") {
    views.batch_size = 128;
  } else if (name == "tiny") {
    epochs = 100, views.batch_size = 64, views.cutmix = false;
  } else if (name != "small" && name != "auto") {
    throw std::invalid_argument("--recipe: unknown recipe '" + name +
                                "' (use auto, imagenet1k, tiny or small)");
  }
  recipe = name;
}

void RelabelConfig::validate() const {
  check_arg(!teacher.empty(), "--teacher", "a teacher checkpoint is required");
  check_arg(!images.empty(), "--images", "the synthetic image folder is required");
  check_arg(!out.empty(), "--out", "a label store path is required");
  check_arg(epochs >= 1, "--epochs", "must be >= 1");
  views.validate();
  labels::check_prune_ratio(prune_ratio);
  labels::LabelCodec{topk, logits}.validate();
  check_arg(forward_batch >= 0, "--forward-batch", "must be >= 0");
}

json RelabelConfig::identity() const {
  json j = config_json(*this);
  for (const char* k : {"recipe", "device", "forward_batch", "out"}) j.erase(k);
  // (absent when off: a store's header and reuse stay those of an lpld from before the option)
  if (!image_labels) j.erase("image_labels");
  return j;
}

json RelabelResult::to_json() const {
  return {{"recipe", recipe},
          {"total_steps", total_steps},
          {"steps_kept", steps_kept},
          {"images", images},
          {"labelled_views", labelled_views},
          {"seconds", seconds},
          {"setup_seconds", setup_seconds},
          {"views_per_second", views_per_second},
          {"label_bytes", label_bytes},
          {"logit_bytes", logit_bytes},
          {"metadata_bytes", metadata_bytes},
          {"image_bytes", image_bytes},
          {"bytes", bytes},
          {"out", out}};
}

}  // namespace lpld::relabel
