#include "train/evaluate.h"

#include <chrono>

#include "data/batches.h"

namespace lpld::train {

EvalResult evaluate(models::ClassifierImpl& model, std::shared_ptr<data::Dataset> dataset,
                    const data::Normalization& norm, int64_t image_size,
                    const torch::Device& device, Progress& progress, int64_t batch_size) {
  const auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  data::EpochOptions eo;
  eo.batch_size = batch_size;
  eo.image_size = image_size;
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
  EvalResult r;
  r.images = seen;
  r.top1 = seen ? 100.0 * correct1.item<int64_t>() / seen : 0;
  r.top5 = seen ? 100.0 * correct5.item<int64_t>() / seen : 0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.images_per_second = r.seconds > 0 ? seen / r.seconds : 0;
  return r;
}

}  // namespace lpld::train
