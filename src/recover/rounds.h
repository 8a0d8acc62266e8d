// recover's outer loop (METHOD.md Stage 2): groups optimized round by round, stalled units
// restarted (stall.h), finished units saved to .units/ and their classes published.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "core/progress.h"
#include "recover/optimize.h"
#include "recover/run_state.h"

namespace lpld::recover {

struct RoundsWork {
  int64_t unit_iterations = 0;   // every unit optimized, wanted or not
  int64_t image_iterations = 0;  // images x iterations
};

// Optimizes `groups` round by round; a unit that stalls (stall.h) is run again from fresh
// streams (attempt + 1) in the next round, beside the units of its group that stalled too
// (a function of the group alone, so splits agree on restarts as well), up to
// config.stall_restarts times; a unit that stalls in every attempt keeps its best attempt
// (lowest final loss) and is recorded as unconverged. Units not `wanted` (outside this run's
// classes, or already saved) are optimized only to keep their groups whole: they are neither
// saved nor reported (result.units_outside counts them).
RoundsWork optimize_units(const GroupContext& ctx, std::vector<std::vector<Unit>> groups,
                          const std::set<int64_t>& wanted, RunState& state,
                          const std::vector<std::string>& names, RecoverResult& result,
                          Progress& progress);

}  // namespace lpld::recover
