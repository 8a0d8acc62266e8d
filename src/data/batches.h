// One pass over a real dataset as normalized, augmented batches on the training device.
// In-memory sets (IDX, CIFAR, small folders): gather + normalize + render_views, batched
// on the device (under 1% of a training step on 28 px data). Streaming folders:
// BatchLoader workers decode and crop each image, so a step never waits on decoding.
#pragma once
#include <torch/torch.h>

#include <future>
#include <memory>
#include <optional>

#include "data/augment.h"
#include "data/dataset.h"
#include "data/loader.h"

namespace lpld::data {

struct EpochOptions {
  int64_t batch_size = 256;
  int64_t image_size = 28;  // output S x S
  bool augment = false;     // train: random crop + flip; eval: centre view
  CropOptions crop;         // used when augment
  bool shuffle = false;
  bool drop_last = false;
  uint64_t seed = 0;        // order and views of this epoch
  int workers = 2;          // streaming sets only
  int64_t start_batch = 0;  // resume: skip the first batches; the rest are as in a full pass
  // One rank's share of the pass (a distributed run, engine/data_parallel.h): with
  // shard_rows, a contiguous slice of every batch's rows; otherwise every shards-th batch.
  // Each image keeps the view it has in the whole pass.
  int64_t shard = 0, shards = 1;
  bool shard_rows = true;
};

class EpochBatches {
 public:
  EpochBatches(std::shared_ptr<Dataset> dataset, Normalization norm, EpochOptions options,
               torch::Device device);
  ~EpochBatches();
  // images float [B, C, S, S] normalized on the device, labels int64 [B] on the device.
  std::optional<std::pair<torch::Tensor, torch::Tensor>> next();
  // Batches of the whole pass (of every rank).
  int64_t num_batches() const { return static_cast<int64_t>(batches_.size()); }

 private:
  std::pair<torch::Tensor, torch::Tensor> make_memory_batch(int64_t b);
  std::shared_ptr<Dataset> dataset_;
  std::shared_ptr<TensorDataset> memory_;
  Normalization norm_;
  EpochOptions options_;
  torch::Device device_;
  std::vector<std::vector<int64_t>> batches_;
  std::vector<int64_t> selected_;                     // the batches this pass yields, in order
  std::pair<int64_t, int64_t> rows(int64_t b) const;  // this shard's rows of batch b
  size_t next_ = 0;
  std::unique_ptr<BatchLoader> loader_;
};

}  // namespace lpld::data
