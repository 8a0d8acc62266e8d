#include "squeeze/class_stats.h"

#include <algorithm>

#include "core/error.h"
#include "data/batches.h"

namespace lpld::squeeze {

ClassStatsAccumulator::ClassStatsAccumulator(models::ClassifierImpl& model, int64_t classes,
                                             const torch::Device& device) {
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  for (const auto& [name, bn] : model.batchnorms()) {
    names_.push_back(name);
    sum_.push_back(torch::zeros({classes, bn->options.num_features()}, f64));
    sum_sq_.push_back(torch::zeros({classes, bn->options.num_features()}, f64));
  }
  hw_.assign(names_.size(), 0);
  samples_ = torch::zeros({classes}, f64);
}

void ClassStatsAccumulator::add(const std::vector<torch::Tensor>& inputs,
                                const torch::Tensor& labels) {
  for (size_t l = 0; l < inputs.size(); ++l) {
    // Per-image sums in the input's precision (a few thousand terms each), then the
    // per-class accumulation in float64 (millions of terms).
    const auto& x = inputs[l];
    hw_[l] = x.size(2) * x.size(3);
    sum_[l].index_add_(0, labels, x.sum({2, 3}).to(torch::kFloat64));
    sum_sq_[l].index_add_(0, labels, x.square().sum({2, 3}).to(torch::kFloat64));
  }
  // Every layer sees the same samples; pixel counts differ by layer (H*W), applied in finish.
  samples_.index_add_(0, labels, torch::ones({labels.size(0)}, samples_.options()));
}

models::ClassStats ClassStatsAccumulator::finish() const {
  models::ClassStats stats;
  auto n = samples_.clamp_min(1).unsqueeze(1);
  for (size_t l = 0; l < names_.size(); ++l) {
    auto count = n * static_cast<double>(hw_[l]);
    auto mean = sum_[l] / count;
    auto var = (sum_sq_[l] / count - mean.square()).clamp_min(0);
    stats.mean[names_[l]] = mean.to(torch::kFloat32);
    stats.var[names_[l]] = var.to(torch::kFloat32);
  }
  stats.count = samples_.to(torch::kCPU).to(torch::kInt64);
  return stats;
}

std::map<std::string, torch::Tensor> ClassStatsAccumulator::sums() const {
  std::map<std::string, torch::Tensor> out;
  for (size_t l = 0; l < names_.size(); ++l) {
    out["sum." + std::to_string(l)] = sum_[l];
    out["sum_sq." + std::to_string(l)] = sum_sq_[l];
  }
  out["hw"] = torch::tensor(hw_, torch::kInt64);
  out["samples"] = samples_;
  return out;
}

void ClassStatsAccumulator::restore(const std::map<std::string, torch::Tensor>& sums,
                                    const std::string& path) {
  auto get = [&](const std::string& k, const torch::Tensor& like) {
    auto it = sums.find(k);
    check_file(it != sums.end() && it->second.sizes() == like.sizes(), path,
               "class-statistics state '" + k + "' is missing or misshaped");
    return it->second.to(like.device()).to(like.scalar_type());
  };
  for (size_t l = 0; l < names_.size(); ++l) {
    sum_[l] = get("sum." + std::to_string(l), sum_[l]);
    sum_sq_[l] = get("sum_sq." + std::to_string(l), sum_sq_[l]);
  }
  auto hw = get("hw", torch::tensor(hw_, torch::kInt64));
  hw_.assign(hw.data_ptr<int64_t>(), hw.data_ptr<int64_t>() + hw.numel());
  samples_ = get("samples", samples_);
}

void ClassStatsAccumulator::sum_over_ranks(Dist& dist) {
  // hw is a property of the model, but a rank that saw no batch never learned it
  auto hw = torch::tensor(hw_, torch::kFloat64);
  std::vector<torch::Tensor> all = {
      samples_, hw, torch::tensor({hw_.empty() || hw_[0] > 0 ? 1.0 : 0.0}, torch::kFloat64)};
  for (size_t l = 0; l < names_.size(); ++l) all.push_back(sum_[l]), all.push_back(sum_sq_[l]);
  dist.all_reduce_sum(all, "squeeze: class statistics");
  const double seen = std::max(1.0, all[2].item<double>());
  for (size_t l = 0; l < hw_.size(); ++l)
    hw_[l] = static_cast<int64_t>(std::llround(all[1][l].item<double>() / seen));
}

models::ClassStats compute_class_stats(models::ClassifierImpl& model,
                                       std::shared_ptr<data::Dataset> dataset,
                                       const data::Normalization& norm,
                                       const ClassStatsOptions& options,
                                       const torch::Device& device, Progress& progress) {
  torch::NoGradGuard no_grad;
  model.eval();
  ClassStatsAccumulator acc(model, dataset->num_classes(), device);
  TORCH_CHECK(!options.dist || (!options.resume_sums && !options.checkpoint),
              "compute_class_stats: a distributed pass does not resume");
  if (options.resume_sums) acc.restore(*options.resume_sums, "class-statistics resume state");
  data::EpochOptions eo;
  eo.start_batch = options.start_batch;
  eo.batch_size = options.batch_size;
  eo.image_size = options.image_size;
  eo.augment = options.augment;
  eo.crop = options.crop;
  eo.seed = options.seed;
  eo.workers = options.workers;
  if (options.dist) {
    eo.shard = options.dist->rank(), eo.shards = options.dist->world_size();
    eo.shard_rows = false;  // whole batches: eval-mode forwards are independent
  }
  data::EpochBatches batches(dataset, norm, eo, device);
  models::BnCapture capture(model);
  progress.start("class stats",
                 options.dist ? dataset->size() / options.dist->world_size() : dataset->size(),
                 "img");
  // A resumed pass counts the killed pass's images as done (not in the rate).
  int64_t seen = std::min(dataset->size(), options.start_batch * options.batch_size);
  int64_t done = options.start_batch;
  if (seen > 0) progress.skip(seen);
  while (auto batch = batches.next()) {
    model.forward(batch->first);
    acc.add(capture.inputs(), batch->second);
    seen += batch->second.size(0);
    progress.update(seen);
    if (options.checkpoint && ++done % options.checkpoint_every == 0 &&
        done < batches.num_batches())
      options.checkpoint(done, acc);
  }
  progress.finish();
  if (options.dist) acc.sum_over_ranks(*options.dist);
  return acc.finish();
}

}  // namespace lpld::squeeze
