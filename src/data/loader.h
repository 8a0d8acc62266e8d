// Streams batches from a Dataset on worker threads, in order, a few batches ahead, so a
// training step never waits on decoding. Each sample goes through `transform` on the
// worker (e.g. a crop/resize to a fixed size); the results are stacked.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "data/dataset.h"

namespace lpld::data {

struct Batch {
  torch::Tensor images;          // stack of transform outputs, e.g. uint8 [B, C, S, S]
  torch::Tensor labels;          // int64 [B]
  std::vector<int64_t> indices;  // dataset indices of the samples
};

struct LoaderOptions {
  int workers = 0;       // decoding threads (0: one per core)
  int prefetch = 4;      // batches kept ready ahead of the consumer
  int64_t min_side = 0;  // images may be decoded down to this short side (Dataset::image)
  // Batches in page-locked memory, so that their copies to a GPU can be non-blocking (needs
  // CUDA at run time: set it only when the batches go to a GPU).
  bool pin_memory = false;
};

// transform(image uint8 [C,H,W], position of the sample in the whole stream) -> tensor;
// all outputs of a batch must share one shape. Called concurrently from workers.
using SampleTransform = std::function<torch::Tensor(const torch::Tensor&, int64_t)>;

class BatchLoader {
 public:
  // `batches`: the dataset indices of every batch, in the order they are consumed.
  BatchLoader(std::shared_ptr<const Dataset> dataset, std::vector<std::vector<int64_t>> batches,
              SampleTransform transform, LoaderOptions options = {});
  ~BatchLoader();  // stops and joins workers
  // The next batch in order, or nullopt at the end. Rethrows a worker's exception.
  std::optional<Batch> next();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace lpld::data
