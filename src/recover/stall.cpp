#include "recover/stall.h"

namespace lpld::recover {

bool stalled(const std::vector<TracePoint>& trace, double correct, int64_t count,
             const StallRule& rule) {
  if (trace.empty()) return false;
  const auto &first = trace.front(), &last = trace.back();
  const double first_loss = first.ce + rule.r_bn * first.bn;
  const double last_loss = last.ce + rule.r_bn * last.bn;
  return last_loss > rule.loss * first_loss || correct < rule.accuracy * static_cast<double>(count);
}

}  // namespace lpld::recover
