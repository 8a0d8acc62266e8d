// Stall detection in recover (issue: no stuck classes). A unit "stalls" when its images end
// up where the teacher neither assigns them to their class nor matches their BN targets:
// seen on CIFAR-10 as one class whose BN loss never fell (final 38-55 against 3-10 for the
// others) with CE ~1 (others ~0). Such a unit is restarted from a fresh init and
// augmentation stream (attempt k of the same unit id), deterministically.
//
// The rule uses only the unit's own loss trace, never its peers': peers depend on how a run
// is packed or split over processes (--classes), and the images must not.
//   trace: window means of CE and BN loss, kTraceWindows windows over the iterations
//   stalled  <=>  last-window CE > stall_ce   or   last-window BN > stall_bn * first-window BN
// (for runs of at least kMinStallIterations iterations)
// bench/results/cifar10.md shows the traces the thresholds come from.
#pragma once
#include <cstdint>
#include <vector>

#include "recover/units.h"

namespace lpld::recover {

constexpr int64_t kTraceWindows = 20;

// Below this many iterations a unit cannot be expected to converge (smoke runs, tests): the
// rule is not applied.
constexpr int64_t kMinStallIterations = 100;

// Iterations per trace window.
inline int64_t trace_window(int64_t iterations) {
  return std::max<int64_t>(1, iterations / kTraceWindows);
}

struct StallRule {
  double ce = 0.5;   // last-window CE above this: the teacher does not see the class
  double bn = 0.75;  // last-window BN loss above this fraction of the first window's
};

bool stalled(const std::vector<TracePoint>& trace, const StallRule& rule);

}  // namespace lpld::recover
