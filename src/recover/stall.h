// Stall detection in recover (issue: no stuck classes). A unit "stalls" when its loss does
// not fall or when the teacher does not assign its saved images to their class; it is then
// restarted from a fresh init and augmentation stream (attempt k of the same unit id),
// deterministically.
//
// The rule uses only the unit's own trace and images, never its peers': peers depend on how a
// run is packed or split over processes (--classes), and the images must not.
//   trace: window means of CE and BN loss, kTraceWindows windows over the iterations
//   stalled  <=>  last-window loss (CE + r_bn BN) > stall_loss x first-window loss
//             or  fewer than stall_accuracy of the unit's saved images are classified right
// (for runs of at least kMinStallIterations iterations).
// Why not a threshold on CE: on Fashion-MNIST with r_bn 0.05 the hard classes (pullover,
// coat, dress) end at CE 0.6-0.8 under augmentation although the teacher assigns all their
// images correctly; the loss of every converging unit in the measured runs falls to at most
// 0.57 of its first window (CIFAR-10: 0.19-0.35), and a unit whose loss stays flat is stuck.
// The "stuck airplane class" reported on CIFAR-10 was no stall: the loss recorded then was the
// last iteration's, and its random crop covered 10% of the image (bench/results/cifar10.md).
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
  double r_bn = 0.05;     // the recover config's BN weight (the loss is CE + r_bn BN)
  double loss = 0.75;     // last-window loss above this fraction of the first window's
  double accuracy = 0.5;  // fewer of the unit's images classified right than this fraction
};

// `correct` of `count` saved images the teacher assigns to their class.
bool stalled(const std::vector<TracePoint>& trace, double correct, int64_t count,
             const StallRule& rule);

}  // namespace lpld::recover
