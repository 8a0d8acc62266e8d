// Wall-clock timing of stages (seconds in every result).
#pragma once
#include <chrono>

namespace lpld {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace lpld
