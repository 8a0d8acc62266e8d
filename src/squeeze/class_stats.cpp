#include "squeeze/class_stats.h"

#include "data/batches.h"

namespace lpld::squeeze {

void accumulate_class_sums(const std::vector<torch::Tensor>& inputs, const torch::Tensor& labels,
                           std::vector<torch::Tensor>& sum, std::vector<torch::Tensor>& sum_sq,
                           torch::Tensor& pixels) {
  for (size_t l = 0; l < inputs.size(); ++l) {
    // Per-image sums in the input's precision (a few thousand terms each), then the
    // per-class accumulation in float64 (millions of terms).
    const auto& x = inputs[l];
    sum[l].index_add_(0, labels, x.sum({2, 3}).to(torch::kFloat64));
    sum_sq[l].index_add_(0, labels, x.square().sum({2, 3}).to(torch::kFloat64));
  }
  // Every layer sees the same samples; pixel counts differ by layer (H*W), applied later.
  pixels.index_add_(0, labels, torch::ones({labels.size(0)}, pixels.options()));
}

models::ClassStats compute_class_stats(models::ClassifierImpl& model,
                                       std::shared_ptr<data::Dataset> dataset,
                                       const data::Normalization& norm,
                                       const ClassStatsOptions& options,
                                       const torch::Device& device, Progress& progress) {
  torch::NoGradGuard no_grad;
  model.eval();
  const int64_t classes = dataset->num_classes();
  auto bns = model.batchnorms();
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  std::vector<torch::Tensor> sum, sum_sq;
  std::vector<int64_t> hw(bns.size(), 0);
  for (const auto& [name, bn] : bns) {
    sum.push_back(torch::zeros({classes, bn->options.num_features()}, f64));
    sum_sq.push_back(torch::zeros({classes, bn->options.num_features()}, f64));
  }
  auto samples = torch::zeros({classes}, f64);
  data::EpochOptions eo;
  eo.batch_size = options.batch_size;
  eo.image_size = options.image_size;
  eo.augment = options.augment;
  eo.crop = options.crop;
  eo.seed = options.seed;
  eo.workers = options.workers;
  data::EpochBatches batches(dataset, norm, eo, device);
  models::BnCapture capture(model);
  progress.start("class stats", dataset->size(), "img");
  int64_t seen = 0;
  while (auto batch = batches.next()) {
    model.forward(batch->first);
    const auto& inputs = capture.inputs();
    for (size_t l = 0; l < inputs.size(); ++l) hw[l] = inputs[l].size(2) * inputs[l].size(3);
    accumulate_class_sums(inputs, batch->second, sum, sum_sq, samples);
    seen += batch->second.size(0);
    progress.update(seen);
  }
  progress.finish();
  models::ClassStats stats;
  auto n = samples.clamp_min(1).unsqueeze(1);
  for (size_t l = 0; l < bns.size(); ++l) {
    auto count = n * static_cast<double>(hw[l]);
    auto mean = sum[l] / count;
    auto var = (sum_sq[l] / count - mean.square()).clamp_min(0);
    stats.mean[bns[l].first] = mean.to(torch::kFloat32);
    stats.var[bns[l].first] = var.to(torch::kFloat32);
  }
  stats.count = samples.to(torch::kCPU).to(torch::kInt64);
  return stats;
}

}  // namespace lpld::squeeze
