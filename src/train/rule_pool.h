// Rule-based label pruning (METHOD.md "Analysis the paper uses"; paper Table 5): score every
// stored step of a full store by a rule and keep the easiest or hardest floor((1-R) * S).
#pragma once
#include "core/io.h"
#include "labels/label_pool.h"
#include "labels/label_store.h"
#include "labels/replay.h"

namespace lpld::train {

// Fills pool.selected for `metric` (<rule>_easy | <rule>_hard) and returns what result.json
// records of it: rule, side, mean score over the pool and over every step, the chosen ids.
json choose_rule_pool(const std::string& metric, const labels::LabelStore& store,
                      labels::StepPlanner& planner, labels::PoolSpec& pool);

}  // namespace lpld::train
