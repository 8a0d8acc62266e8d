#include "train/rule_pool.h"

#include <numeric>

namespace lpld::train {

json choose_rule_pool(const std::string& metric, const labels::LabelStore& store,
                      labels::StepPlanner& planner, labels::PoolSpec& pool) {
  const auto& h = store.header();
  const auto cut = metric.rfind('_');
  const std::string rule = metric.substr(0, cut);
  const bool easy = metric.substr(cut + 1) == "easy";
  auto labels_all = torch::tensor(h.labels, torch::kInt64);
  std::vector<double> scores;
  for (int64_t s = 0; s < h.total_steps(); ++s) {
    auto plan = planner.plan(s);
    auto idx = torch::tensor(plan.indices, torch::kInt64);
    scores.push_back(labels::rule_score(rule, store.probs(s, 1.0), labels_all.index_select(0, idx),
                                        plan.cutmix ? plan.mix.lambda : 1.0));
  }
  pool.selected = labels::select_by_score(scores, pool.pool_steps, easy);
  double pool_sum = 0;
  for (int64_t id : pool.selected) pool_sum += scores[static_cast<size_t>(id)];
  return {{"rule", rule},
          {"side", easy ? "easy" : "hard"},
          {"score_mean_pool", pool_sum / static_cast<double>(pool.selected.size())},
          {"score_mean_all",
           std::accumulate(scores.begin(), scores.end(), 0.0) / static_cast<double>(scores.size())},
          {"selected_steps", pool.selected}};
}

}  // namespace lpld::train
