// Which stored label step each training step replays (METHOD.md Stage 4).
//
// The pool is the first floor((1-R) * S) steps of the S = E x batches-per-epoch steps.
//   batch_to_epoch + random  (the paper's improved label pool): every training epoch draws
//                            batches-per-epoch step ids uniformly *with replacement*.
//   batch_to_epoch + order   cycles through the pool in order (at R = 0: everything, in order).
//   batch + random           draws *without* replacement, reshuffling when the pool is used
//                            up, so pooled batches are used as evenly as possible.
//   batch + order            same as batch_to_epoch + order.
//   epoch + random|order     the pool is the first floor((1-R) * E) whole stored epochs;
//                            each training epoch replays one of them (random or cyclic).
// Draws come from stream (seed, kTagPoolDraw, epoch), so a resumed run draws the same ids.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lpld::train {

struct PoolSpec {
  std::string granularity = "batch_to_epoch";  // batch_to_epoch | batch | epoch
  std::string metric = "random";               // random | order
  int64_t pool_steps = 0;                      // floor((1-R) * S)
  int64_t batches_per_epoch = 0;
  int64_t stored_epochs = 0;
  uint64_t seed = 0;
};

// Validates the spec; throws invalid_argument naming --granularity / --metric.
void validate_pool(const PoolSpec& spec);

// The step ids that training epoch `epoch` replays, in order (batches_per_epoch of them).
std::vector<int64_t> draw_epoch_steps(const PoolSpec& spec, int64_t epoch);

}  // namespace lpld::train
