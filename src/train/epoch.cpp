#include "train/epoch.h"

#include <fmt/format.h>

#include <limits>
#include <optional>

#include "core/clock.h"
#include "core/read_ahead.h"
#include "engine/data_parallel.h"
#include "engine/losses.h"

namespace lpld::train {

namespace {

// A label step's inputs, made ahead of its compute: the plan, the images and the stored labels,
// on the host (pinned when the compute is on a GPU, so their copies do not block).
struct StepInput {
  labels::StepPlan plan;
  torch::Tensor images;           // uint8 [n, C, H, W]
  labels::LabelCodec::Rows rows;  // stored labels (online or fallback: none)
  torch::Tensor fallback;         // a fallback step's teacher distribution [n, classes]
};

StepInput read_step_input(const EpochContext& ctx, const TrainStep& ts) {
  const auto& h = ctx.inputs->header;
  const int64_t step = ts.step;
  StepInput in;
  in.plan = ctx.planner->plan(step);
  in.images = ctx.inputs->set.read(in.plan.indices);  // only this step's
  if (ts.fallback) {
    in.fallback = fallback_probs(ctx.inputs->image_rows, h, in.plan, ctx.temperature);
  } else if (!ctx.inputs->online()) {
    auto rec = ctx.inputs->store->read_step(step);
    if (h.format_version >= 2 && rec.digest != labels::plan_digest(in.plan))
      throw std::runtime_error(fmt::format(
          "{}: step {}: the views this lpld renders are not those the labels were made for "
          "(the store's replay version is {}, this lpld's {}); relabel with this lpld",
          ctx.inputs->store->path(), step, h.replay_version, labels::kReplayVersion));
    in.rows = std::move(rec.rows);
  }
  if (ctx.device.is_cuda()) {
    in.images = in.images.pin_memory();
    if (in.rows.values.defined()) in.rows.values = in.rows.values.pin_memory();
    if (in.fallback.defined()) in.fallback = in.fallback.pin_memory();
  }
  return in;
}

}  // namespace

torch::Tensor fallback_probs(const labels::LabelCodec::Rows& image_rows,
                             const labels::LabelHeader& h, const labels::StepPlan& plan, double T) {
  const auto idx = torch::tensor(plan.indices, torch::kInt64);
  labels::LabelCodec::Rows rows;
  rows.values = image_rows.values.index_select(0, idx);
  if (image_rows.indices.defined()) rows.indices = image_rows.indices.index_select(0, idx);
  torch::Tensor p = labels::teacher_probs(rows, h.num_classes, T);
  if (!plan.cutmix) return p;
  const auto& m = plan.mix;
  const double pasted = static_cast<double>((m.x2 - m.x1) * (m.y2 - m.y1)) /
                        static_cast<double>(h.image_size * h.image_size);
  return (1 - pasted) * p + pasted * p.index_select(0, torch::tensor(m.perm, torch::kInt64));
}

double run_epoch(EpochContext& ctx, const std::vector<TrainStep>& steps, int64_t& images_seen,
                 int64_t& steps_done) {
  const auto& h = ctx.inputs->header;
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().device(ctx.device));
  const double T = ctx.temperature;
  const double Ts = ctx.student_temperature > 0 ? ctx.student_temperature : T;
  const bool topk = !ctx.inputs->online() && h.codec.indexed(h.num_classes);
  // The planner and the store are used by the reading thread only, one step at a time.
  auto read = [&](int64_t i) { return read_step_input(ctx, steps[static_cast<size_t>(i)]); };
  std::optional<ReadAhead<StepInput>> ahead;
  if (ctx.reader && ctx.read_ahead > 0)
    ahead.emplace(*ctx.reader, static_cast<int64_t>(steps.size()), ctx.read_ahead, read);
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto wait_start = Clock::now();
    StepInput in = ahead ? *ahead->next() : read(static_cast<int64_t>(i));
    ctx.input_wait_seconds += seconds_since(wait_start);
    // Rendering stays on this thread: on a GPU it is the device's work (queued behind the
    // copy); on the CPU a second thread's OpenMP team would compete with the step's
    // (data/batches.cpp measured it slower).
    auto images = in.images.to(ctx.device, /*non_blocking=*/true);
    auto batch = labels::render_step(images, *ctx.norm, in.plan, h.image_size);
    // This rank's rows (all of them in one process), its mean loss weighted by its share.
    const int64_t n = batch.size(0);
    const auto [lo, hi] = engine::shard_rows(n, ctx.dist);
    labels::LabelCodec::Rows rows;
    if (in.fallback.defined()) {  // the image labels' distribution, this rank's rows
      in.fallback = in.fallback.to(ctx.device, /*non_blocking=*/true).slice(0, lo, hi);
    } else if (ctx.inputs->online()) {  // labels for this rank's rows only
      torch::NoGradGuard ng;
      engine::AutocastGuard autocast(ctx.device, ctx.precision.amp);
      if (hi > lo)
        rows.values = ctx.inputs->teacher->model
                          ->forward(engine::in_layout(batch.slice(0, lo, hi), ctx.precision))
                          .to(torch::kFloat);
    } else {
      rows = std::move(in.rows);
      rows.values = rows.values.to(ctx.device, /*non_blocking=*/true);
      if (hi - lo < n) {  // this rank's rows of the stored labels
        rows.values = rows.values.slice(0, lo, hi);
        if (rows.indices.defined()) rows.indices = rows.indices.slice(0, lo, hi);
      }
    }
    ctx.optimizer->zero_grad();
    if (hi > lo) {
      torch::Tensor out;
      {  // the forward under autocast; the loss below in float32 (engine/precision.h)
        engine::AutocastGuard autocast(ctx.device, ctx.precision.amp);
        out = ctx.model->forward(engine::in_layout(batch.slice(0, lo, hi), ctx.precision));
      }
      out = out.to(torch::kFloat);
      torch::Tensor loss;
      if (!in.fallback.defined() && !topk && Ts == T) {
        // the plain KD loss (METHOD.md Stage 4), unchanged numerics
        loss = engine::kd_loss(out, rows.values, T, ctx.temperature_squared);
      } else {  // top-k labels (LPQLD's MR-k), a student temperature of its own (CA), fallback
        auto p =
            in.fallback.defined() ? in.fallback : labels::teacher_probs(rows, h.num_classes, T);
        loss = engine::kd_loss_probs(out, p, Ts) * (ctx.temperature_squared ? T * T : 1.0);
        ctx.last_teacher = p.detach();
        ctx.last_student = out.detach();
      }
      if (hi - lo < n) loss = loss * (static_cast<double>(hi - lo) / static_cast<double>(n));
      ctx.scaler.scale(loss).backward();
      loss_sum += loss.detach();
    }
    if (ctx.dist) engine::all_reduce_gradients(*ctx.dist, *ctx.model, "train: gradients");
    ctx.scaler.step(*ctx.optimizer);
    images_seen += n;
    ++steps_done;
  }
  if (ctx.dist) {
    std::vector<torch::Tensor> l{loss_sum};
    ctx.dist->all_reduce_sum(l, "train: the epoch's loss");
    loss_sum = l[0];
  }
  return loss_sum.item<double>() / static_cast<double>(steps.size());
}

double search_student_temperature(const EpochContext& ctx) {
  torch::NoGradGuard ng;
  double best_t = ctx.student_temperature, best = std::numeric_limits<double>::infinity();
  for (int i = 1; i <= 100; ++i) {
    const double t = 0.01 * i;
    const double loss = engine::kd_loss_probs(ctx.last_student, ctx.last_teacher, t).item<double>();
    if (loss < best) best = loss, best_t = t;
  }
  return best_t;
}

std::vector<TrainStep> epoch_steps(const TrainInputs& in, int64_t epoch) {
  std::vector<TrainStep> out;
  if (in.online()) {
    const int64_t bpe = in.header.batches_per_epoch();
    for (int64_t b = 0; b < bpe; ++b) out.push_back({epoch * bpe + b, false});
    return out;
  }
  auto steps = labels::draw_epoch_steps(in.pool, epoch);
  const auto fallback = labels::draw_fallback_steps(in.pool, epoch, steps);
  for (size_t i = 0; i < steps.size(); ++i) out.push_back({steps[i], fallback[i] != 0});
  return out;
}

}  // namespace lpld::train
