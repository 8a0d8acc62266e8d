#include "train/epoch.h"

#include "engine/losses.h"

namespace lpld::train {

double run_epoch(EpochContext& ctx, const std::vector<int64_t>& steps, int64_t& images_seen,
                 int64_t& steps_done) {
  const auto& h = ctx.inputs->header;
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().device(ctx.device));
  for (int64_t step : steps) {
    // Plan and stored logits are cheap (RNG draws, one mapped record); a helper thread
    // per step cost more in thread and OpenMP-team start-up than it saved.
    auto plan = ctx.planner->plan(step);
    auto images = ctx.inputs->set.read(plan.indices).to(ctx.device);  // only this step's
    auto batch = labels::render_step(images, *ctx.norm, plan, h.image_size);
    torch::Tensor target;
    if (ctx.inputs->online()) {
      torch::NoGradGuard ng;
      target = ctx.inputs->teacher->model->forward(batch);
    } else {
      target = ctx.inputs->store->logits(step).to(ctx.device);
    }
    auto loss = engine::kd_loss(ctx.model->forward(batch), target, ctx.temperature,
                                ctx.temperature_squared);
    ctx.optimizer->zero_grad();
    loss.backward();
    ctx.optimizer->step();
    loss_sum += loss.detach();
    images_seen += batch.size(0);
    ++steps_done;
  }
  return loss_sum.item<double>() / static_cast<double>(steps.size());
}

std::vector<int64_t> epoch_steps(const TrainInputs& in, int64_t epoch) {
  if (!in.online()) return labels::draw_epoch_steps(in.pool, epoch);
  const int64_t bpe = in.header.batches_per_epoch();
  std::vector<int64_t> s(static_cast<size_t>(bpe));
  for (int64_t b = 0; b < bpe; ++b) s[b] = epoch * bpe + b;
  return s;
}

}  // namespace lpld::train
