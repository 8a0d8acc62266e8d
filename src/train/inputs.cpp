#include "train/inputs.h"

#include "core/error.h"

namespace lpld::train {
namespace {

// Online labels: the header of the views the teacher labels, as a store would record them.
labels::LabelHeader online_header(const TrainConfig& config, const labels::ImageSet& set,
                                  const models::Checkpoint& teacher) {
  labels::LabelHeader h;
  h.num_images = set.size();
  h.num_classes = teacher.meta.num_classes;
  h.channels = teacher.meta.channels;
  h.image_size = teacher.meta.image_size;
  h.epochs = config.epochs;
  h.batch_size = config.batch_size;
  h.steps_kept = h.total_steps();
  h.seed = config.seed;
  h.crop.scale_lo = config.crop_scale_min;
  h.cutmix = config.cutmix;
  h.cutmix_alpha = config.cutmix_alpha;
  h.norm = teacher.meta.norm;
  h.images = set.paths();
  h.labels = set.labels();
  h.image_set_hash = set.hash();
  h.teacher_hash = hash_file(config.teacher);
  return h;
}

labels::PoolSpec pool_spec(const TrainConfig& config, const labels::LabelHeader& h, bool online) {
  labels::PoolSpec pool;
  pool.granularity = config.granularity;
  pool.metric = config.metric;
  pool.batches_per_epoch = h.batches_per_epoch();
  pool.stored_epochs = h.epochs;
  pool.seed = config.seed;
  pool.pool_steps =
      online ? h.total_steps() : labels::steps_for_ratio(config.prune_ratio, h.total_steps());
  labels::validate_pool(pool);
  if (labels::is_rule_metric(config.metric)) {
    // Rule-based pruning scores every step, so it needs a store with all of them.
    check_arg(
        !online && h.steps_kept == h.total_steps(), "--metric",
        config.metric + " ranks all label steps: give a store relabelled with --prune-ratio 0");
  }
  check_arg(
      pool.pool_steps <= h.steps_kept, "--prune-ratio",
      fmt::format("{} needs the first {} label steps but {} keeps only {} (relabel it with "
                  "--prune-ratio <= {})",
                  config.prune_ratio, pool.pool_steps, config.labels, h.steps_kept, h.prune_ratio));
  return pool;
}

}  // namespace

TrainInputs open_inputs(const TrainConfig& config, const torch::Device& device) {
  TrainInputs in;
  in.set = labels::ImageSet::open(config.images);
  if (config.labels == "online") {
    in.teacher = models::load_checkpoint(config.teacher, device);
    in.header = online_header(config, in.set, *in.teacher);
  } else {
    in.store = std::make_unique<labels::LabelStore>(config.labels);
    in.header = in.store->header();
    check_arg(in.header.image_set_hash == in.set.hash() && in.header.images == in.set.paths(),
              "--labels",
              config.labels + " was made for other images than " + config.images +
                  " (image set hash differs)");
  }
  const auto& h = in.header;
  check_arg(in.set.num_classes() == h.num_classes, "--images",
            "class count differs from the labels'");
  in.pool = pool_spec(config, h, in.online());
  in.val = data::open_dataset(config.val);
  check_arg(in.val->num_classes() == h.num_classes, "--val",
            "has " + std::to_string(in.val->num_classes()) + " classes, the labels " +
                std::to_string(h.num_classes));
  if (in.val->fixed_size()[0] > 0) in.val = data::load_into_memory(in.val);
  return in;
}

json run_identity(const TrainConfig& config, const TrainInputs& in) {
  json identity = config_json(config);
  for (const char* k : {"device", "eval_every", "checkpoint_every", "out"}) identity.erase(k);
  const std::string header_text = in.header.to_json().dump();
  identity["label_header_hash"] =
      in.online() ? in.header.teacher_hash : hash_bytes(header_text.data(), header_text.size());
  identity["image_set_hash"] = in.set.hash();
  return identity;
}

}  // namespace lpld::train
