#include "train/label_pool.h"

#include <stdexcept>

#include "core/error.h"
#include "core/rng.h"

namespace lpld::train {

void validate_pool(const PoolSpec& s) {
  check_arg(s.granularity == "batch_to_epoch" || s.granularity == "batch" || s.granularity == "epoch",
            "--granularity", "must be batch_to_epoch, batch or epoch, not '" + s.granularity + "'");
  check_arg(s.metric == "random" || s.metric == "order", "--metric",
            "must be random or order, not '" + s.metric + "'");
  check_arg(s.pool_steps >= 1, "--prune-ratio", "leaves an empty label pool");
  if (s.granularity == "epoch")
    check_arg(s.pool_steps >= s.batches_per_epoch, "--granularity",
              "epoch needs at least one whole stored epoch in the pool");
}

std::vector<int64_t> draw_epoch_steps(const PoolSpec& s, int64_t epoch) {
  const int64_t bpe = s.batches_per_epoch;
  Rng rng(derive_seed(s.seed, kTagPoolDraw, static_cast<uint64_t>(epoch)));
  std::vector<int64_t> steps;
  steps.reserve(static_cast<size_t>(bpe));
  if (s.granularity == "epoch") {
    const int64_t pooled_epochs = s.pool_steps / bpe;
    const int64_t e = s.metric == "random" ? rng.below(pooled_epochs) : epoch % pooled_epochs;
    for (int64_t b = 0; b < bpe; ++b) steps.push_back(e * bpe + b);
    return steps;
  }
  if (s.metric == "order") {
    for (int64_t b = 0; b < bpe; ++b) steps.push_back((epoch * bpe + b) % s.pool_steps);
    return steps;
  }
  if (s.granularity == "batch_to_epoch") {
    for (int64_t b = 0; b < bpe; ++b) steps.push_back(rng.below(s.pool_steps));
    return steps;
  }
  // batch + random: position `epoch * bpe + b` in an endless sequence of pool
  // permutations; permutation k comes from its own stream so any epoch is computable alone.
  for (int64_t b = 0; b < bpe; ++b) {
    const int64_t pos = epoch * bpe + b, k = pos / s.pool_steps, i = pos % s.pool_steps;
    static thread_local int64_t cached_k = -1;
    static thread_local uint64_t cached_seed = 0;
    static thread_local std::vector<int64_t> perm;
    if (k != cached_k || cached_seed != s.seed || static_cast<int64_t>(perm.size()) != s.pool_steps) {
      perm = Rng(derive_seed(s.seed, kTagPoolDraw, static_cast<uint64_t>(k), 1)).permutation(s.pool_steps);
      cached_k = k;
      cached_seed = s.seed;
    }
    steps.push_back(perm[i]);
  }
  return steps;
}

}  // namespace lpld::train
