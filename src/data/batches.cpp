#include "data/batches.h"

#include <algorithm>

namespace lpld::data {

View eval_view(int64_t height, int64_t width, int64_t size) {
  if (height == size && width == size) return full_view();
  const double side = 0.875 * std::min(height, width);
  View v;
  v.w = static_cast<float>(side / width);
  v.h = static_cast<float>(side / height);
  v.x0 = (1 - v.w) / 2;
  v.y0 = (1 - v.h) / 2;
  return v;
}

EpochBatches::EpochBatches(std::shared_ptr<Dataset> dataset, Normalization norm,
                           EpochOptions options, torch::Device device)
    : dataset_(std::move(dataset)), norm_(std::move(norm)), options_(options), device_(device) {
  const int64_t n = dataset_->size();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (options_.shuffle) order = Rng(derive_seed(options_.seed, kTagTrainOrder)).permutation(n);
  for (int64_t start = 0; start < n; start += options_.batch_size) {
    const int64_t end = std::min(n, start + options_.batch_size);
    if (options_.drop_last && end - start < options_.batch_size && start > 0) break;
    batches_.emplace_back(order.begin() + start, order.begin() + end);
  }
  memory_ = std::dynamic_pointer_cast<TensorDataset>(dataset_);
  if (memory_) return;
  // Streaming: each worker decodes and renders one sample at the output size ([0,1] floats).
  const int64_t size = options_.image_size;
  const bool augment = options_.augment;
  const CropOptions crop = options_.crop;
  const uint64_t seed = options_.seed;
  SampleTransform transform = [size, augment, crop, seed](const torch::Tensor& img, int64_t pos) {
    torch::NoGradGuard no_grad;
    const int64_t h = img.size(1), w = img.size(2);
    View v;
    if (augment) {
      Rng rng(derive_seed(seed, kTagTrainAug, static_cast<uint64_t>(pos)));
      v = random_view(rng, h, w, crop);
    } else {
      v = eval_view(h, w, size);
    }
    auto f = img.unsqueeze(0).to(torch::kFloat32).div_(255.0f);
    return render_views(f, {v}, size).squeeze(0);
  };
  LoaderOptions lo;
  lo.workers = std::max(1, options_.workers);
  loader_ = std::make_unique<BatchLoader>(dataset_, batches_, transform, lo);
}

EpochBatches::~EpochBatches() = default;

std::pair<torch::Tensor, torch::Tensor> EpochBatches::make_memory_batch(int64_t b) {
  torch::NoGradGuard no_grad;
  const auto& idx = batches_[b];
  auto index = torch::tensor(idx, torch::kInt64);
  auto images = normalize(memory_->images().index_select(0, index), norm_, device_);
  auto labels = memory_->labels().index_select(0, index).to(device_);
  const int64_t h = images.size(2), w = images.size(3), s = options_.image_size;
  if (options_.augment) {
    Rng rng(derive_seed(options_.seed, kTagTrainAug, static_cast<uint64_t>(b)));
    std::vector<View> views;
    views.reserve(idx.size());
    for (size_t k = 0; k < idx.size(); ++k) views.push_back(random_view(rng, h, w, options_.crop));
    images = render_views(images, views, s);
  } else if (h != s || w != s) {
    images = render_views(images, std::vector<View>(idx.size(), eval_view(h, w, s)), s);
  }
  return {images, labels};
}

std::optional<std::pair<torch::Tensor, torch::Tensor>> EpochBatches::next() {
  if (next_ >= num_batches()) return std::nullopt;
  const int64_t b = next_++;
  // In-memory sets: built here, on the caller's thread. A background thread would run its
  // own OpenMP team against the training step's on the same cores (measured slower).
  if (memory_) return make_memory_batch(b);
  // Streaming sets: decoded and rendered to [0, 1] by the loader's workers.
  auto batch = loader_->next();
  if (!batch) return std::nullopt;
  return std::make_pair(normalize_unit(batch->images.to(device_), norm_),
                        batch->labels.to(device_));
}

}  // namespace lpld::data
