#include "engine/schedule.h"

#include <cmath>

namespace lpld::engine {

double cosine_lr(double base, double t, double total, double warmup) {
  if (warmup > 0 && t < warmup) return base * (t + 1) / warmup;
  const double span = std::max(1e-12, total - warmup);
  const double p = std::clamp((t - warmup) / span, 0.0, 1.0);
  return 0.5 * base * (1 + std::cos(M_PI * p));
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace lpld::engine
