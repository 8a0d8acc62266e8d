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
  TORCH_CHECK(options_.shards >= 1 && options_.shard >= 0 && options_.shard < options_.shards,
              "EpochBatches: bad shard");
  for (int64_t b = std::clamp<int64_t>(options_.start_batch, 0, num_batches()); b < num_batches();
       ++b)
    if (options_.shard_rows || b % options_.shards == options_.shard) selected_.push_back(b);
  memory_ = std::dynamic_pointer_cast<TensorDataset>(dataset_);
  if (memory_) return;
  // Streaming: each worker decodes and renders one sample at the output size ([0,1] floats).
  // A sample's view is drawn from its position in the whole pass (batch b's row k is at
  // b * batch_size + k), so a resumed or sharded pass renders what the whole pass would.
  auto position = std::make_shared<std::vector<int64_t>>();
  std::vector<std::vector<int64_t>> mine;
  for (int64_t b : selected_) {
    const auto [lo, hi] = rows(b);
    mine.emplace_back(batches_[b].begin() + lo, batches_[b].begin() + hi);
    for (int64_t k = lo; k < hi; ++k) position->push_back(b * options_.batch_size + k);
  }
  const int64_t size = options_.image_size;
  const bool augment = options_.augment;
  const CropOptions crop = options_.crop;
  const uint64_t seed = options_.seed;
  SampleTransform transform = [size, augment, crop, seed, position](const torch::Tensor& img,
                                                                    int64_t stream_pos) {
    const int64_t pos = (*position)[static_cast<size_t>(stream_pos)];
    torch::NoGradGuard no_grad;
    const int64_t h = img.size(1), w = img.size(2);
    auto f = img.unsqueeze(0).to(torch::kFloat32).div_(255.0f);
    if (!augment) return eval_resize_crop(f, size).squeeze(0);
    Rng rng(derive_seed(seed, kTagTrainAug, static_cast<uint64_t>(pos)));
    return render_views(f, {random_view(rng, h, w, crop)}, size).squeeze(0);
  };
  LoaderOptions lo;
  lo.workers = options_.workers;
  lo.pin_memory = device_.is_cuda();
  // Evaluation needs no more than the short side that eval_resize_crop resizes to, so a JPEG
  // may be decoded at a reduced scale; training crops need the full resolution.
  if (!augment) lo.min_side = static_cast<int64_t>(static_cast<double>(size) / 0.875);
  loader_ = std::make_unique<BatchLoader>(dataset_, std::move(mine), transform, lo);
}

std::pair<int64_t, int64_t> EpochBatches::rows(int64_t b) const {
  const int64_t n = static_cast<int64_t>(batches_[b].size());
  if (!options_.shard_rows) return {0, n};
  return {n * options_.shard / options_.shards, n * (options_.shard + 1) / options_.shards};
}

EpochBatches::~EpochBatches() = default;

std::pair<torch::Tensor, torch::Tensor> EpochBatches::make_memory_batch(int64_t b) {
  torch::NoGradGuard no_grad;
  const auto [lo, hi] = rows(b);
  const std::vector<int64_t> idx(batches_[b].begin() + lo, batches_[b].begin() + hi);
  auto index = torch::tensor(idx, torch::kInt64);
  auto images = normalize(memory_->images().index_select(0, index), norm_, device_);
  auto labels = memory_->labels().index_select(0, index).to(device_);
  const int64_t h = images.size(2), w = images.size(3), s = options_.image_size;
  if (options_.augment) {
    Rng rng(derive_seed(options_.seed, kTagTrainAug, static_cast<uint64_t>(b)));
    std::vector<View> views;  // every row's draw in order, this shard's rows kept
    for (int64_t k = 0; k < hi; ++k) {
      View v = random_view(rng, h, w, options_.crop);
      if (k >= lo) views.push_back(v);
    }
    images = render_views(images, views, s);
  } else {
    images = eval_resize_crop(images, s);  // normalization commutes with it (weights sum to 1)
  }
  return {images, labels};
}

std::optional<std::pair<torch::Tensor, torch::Tensor>> EpochBatches::next() {
  if (next_ >= selected_.size()) return std::nullopt;
  const int64_t b = selected_[next_++];
  // In-memory sets: built here, on the caller's thread. A background thread would run its
  // own OpenMP team against the training step's on the same cores (measured slower).
  if (memory_) return make_memory_batch(b);
  // Streaming sets: decoded and rendered to [0, 1] by the loader's workers.
  auto batch = loader_->next();
  if (!batch) return std::nullopt;
  return std::make_pair(normalize_unit(batch->images.to(device_, /*non_blocking=*/true), norm_),
                        batch->labels.to(device_, /*non_blocking=*/true));
}

}  // namespace lpld::data
