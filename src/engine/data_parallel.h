// Data parallelism over the ranks of a distributed run (core/dist.h), as PyTorch's DDP does it
// but over the one-process run's batches: each rank takes a contiguous slice of every batch's
// rows, weights its slice's mean loss by its share of the rows, and the gradients are summed
// over the ranks, so every rank takes the one-process run's optimizer step up to float
// summation order. BatchNorm normalizes each rank's slice by the slice's own statistics (DDP's
// default, not SyncBatchNorm); docs/distributed.md says what that changes.
#pragma once
#include <torch/torch.h>

#include <utility>

#include "core/dist.h"

namespace lpld::engine {

// This rank's rows [begin, end) of a batch of n (all of them without `dist`).
std::pair<int64_t, int64_t> shard_rows(int64_t n, const Dist* dist);

// Sums every parameter's gradient over the ranks in one flat all-reduce. A parameter without a
// gradient (a rank whose slice was empty) counts as zeros.
void all_reduce_gradients(Dist& dist, torch::nn::Module& model, const std::string& what);

// Averages the floating-point buffers (BatchNorm's running statistics) over the ranks, so the
// model that is evaluated and saved sees every rank's data.
void average_buffers(Dist& dist, torch::nn::Module& model, const std::string& what);

}  // namespace lpld::engine
