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
  h.views = config.views;
  h.steps_kept = h.total_steps();
  h.seed = config.seed;
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
  pool.fallback_share = config.fallback_share;
  pool.total_steps = h.total_steps();
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

// Stored labels fix their views: a view option set here (away from its default, by a flag or a
// recipe) that differs from the store's would be silently ignored, so it is an error naming it
// (issue: no silent settings).
void check_store_views(const TrainConfig& config, const labels::LabelHeader& h) {
  for (const auto& c : labels::view_clashes(config.views, h.views, options_set(config)))
    throw std::invalid_argument(
        fmt::format("{}: {} here, but {} was relabelled with {}: a store's views fix it (leave "
                    "{} out, or relabel with {} {})",
                    c.option, c.mine, config.labels, c.theirs, c.option, c.option, c.mine));
}

}  // namespace

TrainInputs open_inputs(const TrainConfig& requested, const torch::Device& device,
                        Progress& progress) {
  TrainInputs in;
  in.set = labels::ImageSet::open(requested.images);
  std::string note;
  if (requested.labels == "online") {
    in.teacher = models::load_checkpoint(requested.teacher, device);
    in.config = resolve_recipe(requested, in.teacher->meta.image_size, "train", &note);
    in.header = online_header(in.config, in.set, *in.teacher);
  } else {
    in.store = std::make_unique<labels::LabelStore>(requested.labels);
    in.header = in.store->header();
    check_arg(in.header.image_set_hash == in.set.hash() && in.header.images == in.set.paths(),
              "--labels",
              requested.labels + " was made for other images than " + requested.images +
                  " (image set hash differs)");
    check_store_views(requested, in.header);
    in.config = resolve_recipe(requested, in.header.image_size, "train", &note);
    // the views are the store's: recorded as they are, whatever the recipe would have chosen
    in.config.views = in.header.views;
  }
  if (!note.empty()) progress.message(note);
  const TrainConfig& config = in.config;
  const auto& h = in.header;
  check_arg(in.set.num_classes() == h.num_classes, "--images",
            "class count differs from the labels'");
  in.pool = pool_spec(config, h, in.online());
  if (config.fallback_share > 0) {
    check_arg(h.image_labels, "--fallback-share",
              config.labels +
                  " has no image labels to fall back on (relabel it with "
                  "--image-labels)");
    in.image_rows = in.store->image_rows();
  }
  in.val = data::open_dataset(config.val);
  check_arg(in.val->num_classes() == h.num_classes, "--val",
            "has " + std::to_string(in.val->num_classes()) + " classes, the labels " +
                std::to_string(h.num_classes));
  if (in.val->fixed_size()[0] > 0) in.val = data::load_into_memory(in.val);
  return in;
}

json run_identity(const TrainConfig& config, const TrainInputs& in) {
  json identity = config_json(config);
  for (const char* k : {"recipe", "device", "eval_every", "checkpoint_every", "out", "read_ahead"})
    identity.erase(k);
  // (absent when off, so that runs of an lpld from before the option stay reusable)
  if (config.fallback_share == 0) identity.erase("fallback_share");
  const std::string header_text = in.header.to_json().dump();
  identity["label_header_hash"] =
      in.online() ? in.header.teacher_hash : hash_bytes(header_text.data(), header_text.size());
  identity["image_set_hash"] = in.set.hash();
  return identity;
}

}  // namespace lpld::train
