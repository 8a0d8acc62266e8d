#include "recover/optimize.h"

#include <fmt/format.h>

#include "core/clock.h"
#include "core/rng.h"
#include "data/augment.h"
#include "engine/schedule.h"
#include "recover/bn_loss.h"
#include "recover/stall.h"

namespace lpld::recover {
namespace {

// N(0, 1) pixels from the unit's own stream (device independent).
torch::Tensor initial_images(const GroupContext& ctx, const Unit& u) {
  Rng rng(derive_seed(ctx.config->seed, kTagRecoverInit, static_cast<uint64_t>(u.id),
                      static_cast<uint64_t>(u.attempt)));
  auto t = torch::empty({u.count, ctx.channels, ctx.size, ctx.size});
  float* d = t.data_ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<float>(rng.normal());
  return t;
}

}  // namespace

GroupViews draw_views(const RecoverConfig& c, std::vector<Rng>& aug, int64_t b, int64_t S) {
  data::CropOptions crop;
  crop.scale_lo = c.crop_scale_min;
  GroupViews g;
  for (auto& rng : aug) {
    data::View shared = data::random_view(rng, S, S, crop);
    for (int64_t i = 0; i < b; ++i)
      g.views.push_back(c.per_image_augment ? (i == 0 ? shared : data::random_view(rng, S, S, crop))
                                            : shared);
    const int64_t j = c.jitter;
    g.rolls.emplace_back(c.jitter_signed ? rng.range(-j, j) : rng.range(0, j),
                         c.jitter_signed ? rng.range(-j, j) : rng.range(0, j));
  }
  return g;
}

torch::Tensor apply_views(const torch::Tensor& x, const GroupViews& g, int64_t b, int64_t S) {
  const int64_t K = static_cast<int64_t>(g.rolls.size());
  auto v = data::render_views(x, g.views, S);
  std::vector<torch::Tensor> parts;
  for (int64_t k = 0; k < K; ++k)
    parts.push_back(
        torch::roll(v.narrow(0, k * b, b), {g.rolls[k].first, g.rolls[k].second}, {2, 3}));
  return K == 1 ? parts[0] : torch::cat(parts);
}

GroupLoss group_loss(const GroupContext& ctx, const torch::Tensor& xin, int64_t K,
                     const torch::Tensor& target, const std::vector<torch::Tensor>& target_mean,
                     const std::vector<torch::Tensor>& target_var) {
  const auto& config = *ctx.config;
  models::BnCapture capture(*ctx.teacher);
  auto logits = ctx.teacher->forward(xin);
  GroupLoss l;
  // CE is a mean within each unit (the official per-batch mean), summed over units.
  l.ce = torch::cross_entropy_loss(logits, target, {}, at::Reduction::None).view({K, -1}).mean(1);
  l.bn = bn_matching_loss(capture.inputs(), K, target_mean, target_var,
                          config.first_bn_multiplier);
  l.total = l.ce + config.r_bn * l.bn;
  if (config.tv_l2 > 0) l.total = l.total + config.tv_l2 * tv_l2_prior(xin, K);
  if (config.l2 > 0) l.total = l.total + config.l2 * xin.reshape({K, -1}).norm(2, {1});
  return l;
}

BnTargets bn_targets(const models::Checkpoint& ck, bool class_mode) {
  BnTargets t;
  for (const auto& [name, bn] : ck.model->batchnorms()) {
    if (class_mode) {
      t.mean.push_back(ck.class_stats.mean.at(name));
      t.var.push_back(ck.class_stats.var.at(name));
    } else {
      t.mean.push_back(bn->running_mean.detach().unsqueeze(0));
      t.var.push_back(bn->running_var.detach().unsqueeze(0));
    }
  }
  return t;
}

GroupContext make_group_context(const models::Checkpoint& ck, const RecoverConfig& config,
                                const torch::Device& device) {
  GroupContext ctx;
  ctx.teacher = ck.model.get();
  ctx.config = &config;
  ctx.targets = bn_targets(ck, config.mode == "class");
  ctx.channels = ck.meta.channels;
  ctx.size = ck.meta.image_size;
  ctx.norm = ck.meta.norm;
  std::tie(ctx.lo, ctx.hi) = data::pixel_bounds(ck.meta.norm, device);
  ctx.device = device;
  return ctx;
}

std::vector<UnitResult> optimize_group(const GroupContext& ctx, const std::vector<Unit>& group,
                                       Progress& progress, int64_t& work_done) {
  const auto start = Clock::now();
  const auto& config = *ctx.config;
  const bool class_mode = config.mode == "class";
  auto& teacher = *ctx.teacher;
  const int64_t K = static_cast<int64_t>(group.size()), b = group.front().count;
  std::vector<torch::Tensor> init;
  std::vector<int64_t> targets, target_rows;
  std::vector<Rng> aug;
  for (const auto& u : group) {
    init.push_back(initial_images(ctx, u));
    for (int64_t i = 0; i < b; ++i) targets.push_back(class_mode ? u.label : i);
    target_rows.push_back(class_mode ? u.label : 0);
    aug.emplace_back(derive_seed(config.seed, kTagRecoverAug, static_cast<uint64_t>(u.id),
                                 static_cast<uint64_t>(u.attempt)));
  }
  auto x = torch::cat(init).to(ctx.device).set_requires_grad(true);
  auto target = torch::tensor(targets, torch::kInt64).to(ctx.device);
  auto rows = torch::tensor(target_rows, torch::kInt64).to(ctx.device);
  std::vector<torch::Tensor> gmean, gvar;
  for (size_t l = 0; l < ctx.targets.mean.size(); ++l) {
    gmean.push_back(ctx.targets.mean[l].index_select(0, rows));
    gvar.push_back(ctx.targets.var[l].index_select(0, rows));
  }
  torch::optim::Adam adam({x}, torch::optim::AdamOptions(config.lr).betas({0.5, 0.9}).eps(1e-8));

  // Loss trace: window sums stay on the device; one host copy per window.
  const int64_t window = trace_window(config.iterations);
  auto ce_sum = torch::zeros({K}, torch::TensorOptions().device(ctx.device));
  auto bn_sum = torch::zeros({K}, torch::TensorOptions().device(ctx.device));
  int64_t in_window = 0;
  std::vector<std::vector<TracePoint>> traces(static_cast<size_t>(K));
  const std::string who = class_mode ? fmt::format("class {}", group.front().label)
                                     : fmt::format("batch {}", group.front().chunk);
  for (int64_t it = 0; it < config.iterations; ++it) {
    engine::set_lr(adam, engine::cosine_lr(config.lr, static_cast<double>(it),
                                           static_cast<double>(config.iterations)));
    auto xin = apply_views(x, draw_views(config, aug, b, ctx.size), b, ctx.size);
    auto [ce, bn, loss] = group_loss(ctx, xin, K, target, gmean, gvar);
    adam.zero_grad();
    loss.sum().backward();
    adam.step();
    {
      torch::NoGradGuard ng;
      x.copy_(torch::max(torch::min(x, ctx.hi), ctx.lo));
      ce_sum += ce.detach();
      bn_sum += bn.detach();
    }
    work_done += K;
    if (++in_window == window || it + 1 == config.iterations) {
      auto ce_mean = (ce_sum / in_window).cpu(), bn_mean = (bn_sum / in_window).cpu();
      for (int64_t k = 0; k < K; ++k)
        traces[k].push_back({it + 1, ce_mean[k].item<double>(), bn_mean[k].item<double>()});
      ce_sum.zero_(), bn_sum.zero_(), in_window = 0;
      progress.update(work_done,
                      fmt::format("{} ce {:.3f} bn {:.3f}", who, ce_mean.mean().item<double>(),
                                  bn_mean.mean().item<double>()));
    } else if (it % 10 == 0) {
      progress.update(work_done);
    }
  }
  // Quantize, and check what the teacher says about the saved pixels.
  torch::NoGradGuard ng;
  auto u8 = data::denormalize_to_u8(x, ctx.norm).cpu();
  auto pred = teacher.forward(data::normalize(u8, ctx.norm, ctx.device)).argmax(1);
  auto correct = pred.eq(target).view({K, b}).to(torch::kFloat64).sum(1).cpu();
  const double secs = seconds_since(start) / static_cast<double>(K);
  std::vector<UnitResult> results(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    auto& r = results[k];
    r.images = u8.narrow(0, k * b, b).clone();
    r.trace = std::move(traces[k]);
    r.ce = r.trace.back().ce, r.bn = r.trace.back().bn;
    r.ce_start = r.trace.front().ce, r.bn_start = r.trace.front().bn;
    r.correct = correct[k].item<double>();
    r.seconds = secs;
    r.attempts = group[k].attempt + 1;
  }
  return results;
}

}  // namespace lpld::recover
