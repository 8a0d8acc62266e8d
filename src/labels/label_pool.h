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
//   <rule>_easy | <rule>_hard (rule: correct, diff, diff_signed, cut_ratio, confidence):
//                            the paper's rule-based pruning (METHOD.md "Analysis"): the pool
//                            is the floor((1-R) * S) steps of a full store that score highest
//                            (easy) or lowest (hard) by the rule; epochs draw from it with
//                            replacement, as batch_to_epoch + random.
// Draws come from stream (seed, kTagPoolDraw, epoch), so a resumed run draws the same ids.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/choice.h"

namespace lpld::labels {

// How a pruned run's epochs draw from the label pool (above).
enum class Granularity { batch_to_epoch, batch, epoch };
const std::vector<Choice<Granularity>>& choices(Granularity);

struct PoolSpec {
  Granularity granularity = Granularity::batch_to_epoch;
  std::string metric = "random";  // random | order
  int64_t pool_steps = 0;         // floor((1-R) * S)
  int64_t batches_per_epoch = 0;
  int64_t stored_epochs = 0;
  uint64_t seed = 0;
  std::vector<int64_t> selected;  // rule-based metrics: the chosen step ids
  // The image-label fallback (issue #30; train/epoch.h): the share of training steps that
  // render a pruned step's views (ids pool_steps .. total_steps-1) instead of replaying the pool.
  double fallback_share = 0;
  int64_t total_steps = 0;  // S
};

// True for the rule-based metrics (<rule>_easy / <rule>_hard).
bool is_rule_metric(const std::string& metric);

// Batch-level score of a stored step by `rule` (higher = easier): `probs` [n, C] softmax of
// the teacher logits, `labels` [n] the images' classes, `lambda` the step's CutMix lambda
// (1 without CutMix).
double rule_score(const std::string& rule, const torch::Tensor& probs, const torch::Tensor& labels,
                  double lambda);

// The `count` step ids with the highest (easy) or lowest (hard) scores, ascending by id.
std::vector<int64_t> select_by_score(const std::vector<double>& scores, int64_t count, bool easy);

// Validates the spec; throws invalid_argument naming --granularity / --metric.
void validate_pool(const PoolSpec& spec);

// A pruning ratio R is in [0, 1): the one check of every place that takes one; `what` names
// it in the error ("--prune-ratio", "demo.yaml: prune_ratios").
void check_prune_ratio(double prune_ratio, const std::string& what = "--prune-ratio");
// Steps kept for a pruning ratio: floor((1 - r) * S), exact for decimal ratios (a small
// epsilon absorbs 1 - 0.9 = 0.0999...; the official code loses a step there).
int64_t steps_for_ratio(double prune_ratio, int64_t total_steps);

// The step ids that training epoch `epoch` replays, in order (batches_per_epoch of them).
std::vector<int64_t> draw_epoch_steps(const PoolSpec& spec, int64_t epoch);

// With a fallback share: each of the epoch's `steps`, with probability fallback_share, is
// replaced by a pruned step's id drawn uniformly from pool_steps .. total_steps-1, from stream
// (seed, kTagFallback, epoch); returns which were (1) so that their labels come from the image
// labels. Without a share: all 0, `steps` unchanged.
std::vector<uint8_t> draw_fallback_steps(const PoolSpec& spec, int64_t epoch,
                                         std::vector<int64_t>& steps);

}  // namespace lpld::labels
