#include "engine/evaluate.h"

#include <chrono>

#include "core/error.h"
#include "core/runtime.h"
#include "data/batches.h"
#include "models/checkpoint.h"

namespace lpld::engine {

EvalResult evaluate(models::ClassifierImpl& model, std::shared_ptr<data::Dataset> dataset,
                    const data::Normalization& norm, int64_t image_size,
                    const torch::Device& device, Progress& progress, int64_t batch_size,
                    Dist* dist) {
  const auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  data::EpochOptions eo;
  eo.batch_size = batch_size;
  eo.image_size = image_size;
  if (dist) eo.shard = dist->rank(), eo.shards = dist->world_size(), eo.shard_rows = false;
  data::EpochBatches batches(dataset, norm, eo, device);
  const int64_t k = std::min<int64_t>(5, dataset->num_classes());
  // Counts stay on the device: no host round trip per batch.
  auto correct1 = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  auto correct5 = correct1.clone();
  int64_t seen = 0;
  progress.start("eval", dataset->size(), "img");
  while (auto batch = batches.next()) {
    auto& [images, labels] = *batch;
    auto topk = std::get<1>(model.forward(images).topk(k, 1));
    auto hit = topk.eq(labels.unsqueeze(1));
    correct1 += hit.select(1, 0).sum();
    correct5 += hit.any(1).sum();
    seen += labels.size(0);
    progress.update(seen);
  }
  progress.finish();
  if (was_training) model.train();
  if (dist) {
    std::vector<torch::Tensor> counts{torch::stack({correct1, correct5, torch::tensor(seen)})};
    dist->all_reduce_sum(counts, "evaluation: the counts");
    correct1 = counts[0][0], correct5 = counts[0][1], seen = counts[0][2].item<int64_t>();
  }
  EvalResult r;
  r.images = seen;
  r.top1 = seen ? 100.0 * correct1.item<int64_t>() / seen : 0;
  r.top5 = seen ? 100.0 * correct5.item<int64_t>() / seen : 0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.images_per_second = r.seconds > 0 ? seen / r.seconds : 0;
  return r;
}

void EvalConfig::declare(OptionSet& o) {
  o.add("model", &model, "checkpoint to evaluate")
      .add("data", &data, "labelled dataset spec")
      .add("device", &device, "cpu, cuda or cuda:N")
      .add("batch_size", &batch_size, "evaluation batch size");
}

void EvalConfig::validate() const {
  check_arg(!model.empty(), "--model", "a checkpoint is required");
  check_arg(!data.empty(), "--data", "a dataset spec is required");
  check_arg(batch_size >= 1, "--batch-size", "must be >= 1");
}

json to_json(const EvalResult& r) {
  return {{"top1", r.top1},
          {"top5", r.top5},
          {"images", r.images},
          {"seconds", r.seconds},
          {"images_per_second", r.images_per_second}};
}

EvalResult evaluate_checkpoint(const EvalConfig& config, Progress& progress) {
  config.validate();
  const auto device = parse_device(config.device);
  auto ck = models::load_checkpoint(config.model, device);
  auto ds = data::open_dataset(config.data);
  check_arg(ds->num_classes() == ck.meta.num_classes, "--data",
            "has " + std::to_string(ds->num_classes()) + " classes, the model " +
                std::to_string(ck.meta.num_classes));
  check_arg(ds->channels() == ck.meta.channels, "--data",
            "has " + std::to_string(ds->channels()) + " channels, the model " +
                std::to_string(ck.meta.channels));
  if (ds->fixed_size()[0] > 0) ds = data::load_into_memory(ds);
  return evaluate(*ck.model, ds, ck.meta.norm, ck.meta.image_size, device, progress,
                  config.batch_size);
}

}  // namespace lpld::engine
