#include "data/batches.h"

#include <algorithm>

namespace lpld::data {

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
  next_ = std::clamp<int64_t>(options_.start_batch, 0, num_batches());
  memory_ = std::dynamic_pointer_cast<TensorDataset>(dataset_);
  if (memory_) return;
  // Streaming: each worker decodes and renders one sample at the output size ([0,1] floats).
  const int64_t size = options_.image_size;
  const bool augment = options_.augment;
  const CropOptions crop = options_.crop;
  const uint64_t seed = options_.seed;
  int64_t skipped = 0;  // stream positions of the skipped batches: views depend on positions
  for (int64_t b = 0; b < next_; ++b) skipped += static_cast<int64_t>(batches_[b].size());
  SampleTransform transform = [size, augment, crop, seed, skipped](const torch::Tensor& img,
                                                                   int64_t stream_pos) {
    const int64_t pos = stream_pos + skipped;
    torch::NoGradGuard no_grad;
    const int64_t h = img.size(1), w = img.size(2);
    auto f = img.unsqueeze(0).to(torch::kFloat32).div_(255.0f);
    if (!augment) return eval_resize_crop(f, size).squeeze(0);
    Rng rng(derive_seed(seed, kTagTrainAug, static_cast<uint64_t>(pos)));
    return render_views(f, {random_view(rng, h, w, crop)}, size).squeeze(0);
  };
  LoaderOptions lo;
  lo.workers = options_.workers;
  // Evaluation needs no more than the short side that eval_resize_crop resizes to, so a JPEG
  // may be decoded at a reduced scale; training crops need the full resolution.
  if (!augment) lo.min_side = static_cast<int64_t>(static_cast<double>(size) / 0.875);
  loader_ = std::make_unique<BatchLoader>(
      dataset_, std::vector<std::vector<int64_t>>(batches_.begin() + next_, batches_.end()),
      transform, lo);
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
  } else {
    images = eval_resize_crop(images, s);  // normalization commutes with it (weights sum to 1)
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
