// Learning-rate schedules: linear warm-up then cosine to zero (METHOD.md Stage 4 recipes).
#pragma once
#include <torch/torch.h>

namespace lpld::engine {

// `t` is the position in [0, total) (steps or epochs); warm-up rises linearly from
// base/warmup to base over the first `warmup` units, then cosine from base to 0.
double cosine_lr(double base, double t, double total, double warmup = 0);

void set_lr(torch::optim::Optimizer& optimizer, double lr);

}  // namespace lpld::engine
