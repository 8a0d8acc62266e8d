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
};

class EpochBatches {
 public:
  EpochBatches(std::shared_ptr<Dataset> dataset, Normalization norm, EpochOptions options,
               torch::Device device);
  ~EpochBatches();
  // images float [B, C, S, S] normalized on the device, labels int64 [B] on the device.
  std::optional<std::pair<torch::Tensor, torch::Tensor>> next();
  int64_t num_batches() const { return static_cast<int64_t>(batches_.size()); }

 private:
  std::pair<torch::Tensor, torch::Tensor> make_memory_batch(int64_t b);
  std::shared_ptr<Dataset> dataset_;
  std::shared_ptr<TensorDataset> memory_;
  Normalization norm_;
  EpochOptions options_;
  torch::Device device_;
  std::vector<std::vector<int64_t>> batches_;
  int64_t next_ = 0;
  std::unique_ptr<BatchLoader> loader_;
};

}  // namespace lpld::data
