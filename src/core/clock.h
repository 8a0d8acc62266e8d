// Wall-clock timing of stages (seconds in every result). A stage's setup_seconds are those
// before its first unit of work (inputs, model, what a resumed run finds): every run pays them
// again, resumed or not, so bench/resume_time.sh counts them as start-up.
#pragma once
#include <chrono>

namespace lpld {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace lpld
