#include "recover/stall.h"

namespace lpld::recover {

bool stalled(const std::vector<TracePoint>& trace, const StallRule& rule) {
  if (trace.empty()) return false;
  const auto &first = trace.front(), &last = trace.back();
  return last.ce > rule.ce || last.bn > rule.bn * first.bn;
}

}  // namespace lpld::recover
