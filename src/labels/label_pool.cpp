#include "labels/label_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "core/error.h"
#include "core/rng.h"

namespace lpld::labels {

namespace {
const char* kRules[] = {"correct", "diff", "diff_signed", "cut_ratio", "confidence"};
}

bool is_rule_metric(const std::string& metric) {
  for (const char* r : kRules)
    if (metric == std::string(r) + "_easy" || metric == std::string(r) + "_hard") return true;
  return false;
}

double rule_score(const std::string& rule, const torch::Tensor& probs, const torch::Tensor& labels,
                  double lambda) {
  if (rule == "cut_ratio") return lambda;
  auto top2 = std::get<0>(probs.topk(2, 1));
  if (rule == "confidence") return top2.select(1, 0).mean().item<double>();
  if (rule == "diff") return (top2.select(1, 0) - top2.select(1, 1)).mean().item<double>();
  if (rule == "correct")
    return probs.argmax(1).eq(labels).to(torch::kFloat64).mean().item<double>();
  if (rule == "diff_signed") {
    auto p_true = probs.gather(1, labels.unsqueeze(1)).squeeze(1);
    auto others = probs.scatter(1, labels.unsqueeze(1), -1.0);
    return (p_true - std::get<0>(others.max(1))).mean().item<double>();
  }
  throw std::invalid_argument("--metric: unknown rule '" + rule + "'");
}

std::vector<int64_t> select_by_score(const std::vector<double>& scores, int64_t count, bool easy) {
  std::vector<int64_t> ids(scores.size());
  std::iota(ids.begin(), ids.end(), 0);
  // stable: ties keep step order, so the selection is reproducible
  std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) {
    return easy ? scores[a] > scores[b] : scores[a] < scores[b];
  });
  ids.resize(static_cast<size_t>(std::min<int64_t>(count, static_cast<int64_t>(ids.size()))));
  std::sort(ids.begin(), ids.end());
  return ids;
}

const std::vector<Choice<Granularity>>& choices(Granularity) {
  static const std::vector<Choice<Granularity>> table = {
      {Granularity::batch_to_epoch, "batch_to_epoch"},
      {Granularity::batch, "batch"},
      {Granularity::epoch, "epoch"}};
  return table;
}

void validate_pool(const PoolSpec& s) {
  check_arg(s.metric == "random" || s.metric == "order" || is_rule_metric(s.metric), "--metric",
            "must be random, order or <rule>_easy|_hard (rules: correct, diff, diff_signed, "
            "cut_ratio, confidence), not '" +
                s.metric + "'");
  check_arg(s.pool_steps >= 1, "--prune-ratio", "leaves an empty label pool");
  check_arg(s.fallback_share >= 0 && s.fallback_share < 1, "--fallback-share",
            fmt::format("must be in [0, 1), got {}", s.fallback_share));
  check_arg(s.fallback_share == 0 || s.pool_steps < s.total_steps, "--fallback-share",
            "renders pruned steps' views, and --prune-ratio 0 prunes none");
  if (s.granularity == Granularity::epoch)
    check_arg(s.pool_steps >= s.batches_per_epoch, "--granularity",
              "epoch needs at least one whole stored epoch in the pool");
}

std::vector<int64_t> draw_epoch_steps(const PoolSpec& s, int64_t epoch) {
  const int64_t bpe = s.batches_per_epoch;
  Rng rng(derive_seed(s.seed, kTagPoolDraw, static_cast<uint64_t>(epoch)));
  std::vector<int64_t> steps;
  steps.reserve(static_cast<size_t>(bpe));
  if (is_rule_metric(s.metric)) {
    for (int64_t b = 0; b < bpe; ++b)
      steps.push_back(
          s.selected[static_cast<size_t>(rng.below(static_cast<int64_t>(s.selected.size())))]);
    return steps;
  }
  if (s.granularity == Granularity::epoch) {
    const int64_t pooled_epochs = s.pool_steps / bpe;
    const int64_t e = s.metric == "random" ? rng.below(pooled_epochs) : epoch % pooled_epochs;
    for (int64_t b = 0; b < bpe; ++b) steps.push_back(e * bpe + b);
    return steps;
  }
  if (s.metric == "order") {
    for (int64_t b = 0; b < bpe; ++b) steps.push_back((epoch * bpe + b) % s.pool_steps);
    return steps;
  }
  if (s.granularity == Granularity::batch_to_epoch) {
    for (int64_t b = 0; b < bpe; ++b) steps.push_back(rng.below(s.pool_steps));
    return steps;
  }
  // batch + random: position `epoch * bpe + b` in an endless sequence of pool
  // permutations; permutation k comes from its own stream so any epoch is computable alone
  // (an epoch spans at most a few permutations: each is drawn once per call).
  int64_t perm_k = -1;
  std::vector<int64_t> perm;
  for (int64_t b = 0; b < bpe; ++b) {
    const int64_t pos = epoch * bpe + b, k = pos / s.pool_steps, i = pos % s.pool_steps;
    if (k != perm_k) {
      perm = Rng(derive_seed(s.seed, kTagPoolDraw, static_cast<uint64_t>(k), 1))
                 .permutation(s.pool_steps);
      perm_k = k;
    }
    steps.push_back(perm[i]);
  }
  return steps;
}

std::vector<uint8_t> draw_fallback_steps(const PoolSpec& s, int64_t epoch,
                                         std::vector<int64_t>& steps) {
  std::vector<uint8_t> fallback(steps.size(), 0);
  if (s.fallback_share <= 0) return fallback;
  Rng rng(derive_seed(s.seed, kTagFallback, static_cast<uint64_t>(epoch)));
  for (size_t i = 0; i < steps.size(); ++i) {
    // (both draws for every step, so that one step's outcome does not shift the next's)
    const bool fall = rng.uniform() < s.fallback_share;
    const int64_t pruned = s.pool_steps + rng.below(s.total_steps - s.pool_steps);
    if (fall) steps[i] = pruned, fallback[i] = 1;
  }
  return fallback;
}

void check_prune_ratio(double prune_ratio, const std::string& what) {
  check_arg(prune_ratio >= 0 && prune_ratio < 1, what,
            fmt::format("must be in [0, 1), got {}", prune_ratio));
}

int64_t steps_for_ratio(double prune_ratio, int64_t total_steps) {
  check_prune_ratio(prune_ratio);
  return static_cast<int64_t>(std::floor((1.0 - prune_ratio) * total_steps + 1e-9));
}

}  // namespace lpld::labels
