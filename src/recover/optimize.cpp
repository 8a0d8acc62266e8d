#include "recover/optimize.h"

#include <fmt/format.h>

#include <cmath>

#include "core/clock.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "data/augment.h"
#include "engine/optimizer_state.h"
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

LossWeights loss_weights(const RecoverConfig& config) {
  return {config.r_bn, config.first_bn_multiplier, config.tv_l2, config.l2};
}

GroupLoss group_loss(const GroupContext& ctx, const LossWeights& w, const torch::Tensor& xin,
                     int64_t K, const torch::Tensor& target,
                     const std::vector<torch::Tensor>& target_mean,
                     const std::vector<torch::Tensor>& target_var) {
  models::BnCapture capture(*ctx.teacher);
  torch::Tensor logits;
  {  // the forward under autocast; the losses below in float32 (engine/precision.h)
    engine::AutocastGuard autocast(ctx.device, ctx.precision.amp);
    logits = ctx.teacher->forward(engine::in_layout(xin, ctx.precision)).to(torch::kFloat);
  }
  std::vector<torch::Tensor> bn_inputs;
  for (const auto& t : capture.inputs()) bn_inputs.push_back(t.to(torch::kFloat));
  GroupLoss l;
  // CE is a mean within each unit (the official per-batch mean), summed over units.
  l.ce = torch::cross_entropy_loss(logits, target, {}, at::Reduction::None).view({K, -1}).mean(1);
  l.bn = bn_matching_loss(bn_inputs, K, target_mean, target_var, w.first_bn_multiplier);
  l.total = l.ce + w.r_bn * l.bn;
  if (w.tv_l2 > 0) l.total = l.total + w.tv_l2 * tv_l2_prior(xin, K);
  if (w.l2 > 0) l.total = l.total + w.l2 * xin.reshape({K, -1}).norm(2, {1});
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
  ctx.targets = bn_targets(ck, config.class_wise());
  ctx.channels = ck.meta.channels;
  ctx.size = ck.meta.image_size;
  ctx.norm = ck.meta.norm;
  std::tie(ctx.lo, ctx.hi) = data::pixel_bounds(ck.meta.norm, device);
  ctx.device = device;
  ctx.precision = engine::Precision{config.amp, config.channels_last};
  if (ctx.precision.channels_last) engine::to_channels_last(*ck.model);
  return ctx;
}

std::string group_state_path(const std::string& out, const std::vector<Unit>& group) {
  std::string key;
  for (const auto& u : group) key += fmt::format("{}:{},", u.id, u.attempt);
  return out + "/.units/g" + hash_bytes(key.data(), key.size()) + ".safetensors";
}

namespace {

// The state of one group under optimization: images, Adam, augmentation streams and the loss
// trace. Saved every config.checkpoint_every iterations so a killed run loses at most that much.
class GroupRun {
 public:
  GroupRun(const GroupContext& ctx, const std::vector<Unit>& group)
      : ctx_(ctx),
        config_(*ctx.config),
        group_(group),
        K_(static_cast<int64_t>(group.size())),
        b_(group.front().count),
        path_(group_state_path(ctx.config->out, group)),
        weights_(loss_weights(*ctx.config)) {
    const bool class_mode = config_.class_wise();
    std::vector<torch::Tensor> init;
    std::vector<int64_t> targets, rows;
    for (const auto& u : group) {
      init.push_back(initial_images(ctx, u));
      for (int64_t i = 0; i < b_; ++i) targets.push_back(class_mode ? u.label : u.first + i);
      rows.push_back(class_mode ? u.label : 0);
      aug_.emplace_back(derive_seed(config_.seed, kTagRecoverAug, static_cast<uint64_t>(u.id),
                                    static_cast<uint64_t>(u.attempt)));
    }
    x_ = torch::cat(init).to(ctx.device).set_requires_grad(true);
    target_ = torch::tensor(targets, torch::kInt64).to(ctx.device);
    auto r = torch::tensor(rows, torch::kInt64).to(ctx.device);
    for (size_t l = 0; l < ctx.targets.mean.size(); ++l) {
      mean_.push_back(ctx.targets.mean[l].index_select(0, r));
      var_.push_back(ctx.targets.var[l].index_select(0, r));
    }
    adam_ = std::make_unique<torch::optim::Adam>(
        std::vector<torch::Tensor>{x_},
        torch::optim::AdamOptions(config_.lr).betas({0.5, 0.9}).eps(1e-8));
    ce_sum_ = torch::zeros({K_}, torch::TensorOptions().device(ctx.device));
    bn_sum_ = torch::zeros({K_}, torch::TensorOptions().device(ctx.device));
    traces_.resize(static_cast<size_t>(K_));
  }

  // Continues a killed run's group from its saved state; returns the iteration to start at.
  int64_t resume() {
    if (!file_exists(path_)) return 0;
    auto f = load_safetensors(path_);
    torch::NoGradGuard ng;
    x_.copy_(f.tensors.at("x"));
    ce_sum_.copy_(f.tensors.at("ce_sum")), bn_sum_.copy_(f.tensors.at("bn_sum"));
    engine::load_optimizer_tensors(*adam_, f.tensors, path_);
    const json j = json::parse(f.metadata.at("state"));
    const int64_t it = j.at("it");
    in_window_ = j.at("in_window"), prior_seconds_ = j.at("seconds");
    for (int64_t k = 0; k < K_; ++k)
      for (const auto& p : j.at("traces").at(k)) traces_[k].push_back({p.at(0), p.at(1), p.at(2)});
    for (int64_t i = 0; i < it; ++i) draw_views(config_, aug_, b_, ctx_.size);  // replay draws
    return it;
  }

  // One Adam step on a fresh view; returns the per-unit CE and BN loss of that view.
  void step(int64_t it) {
    engine::set_lr(*adam_, engine::cosine_lr(config_.lr, static_cast<double>(it),
                                             static_cast<double>(config_.iterations)));
    auto xin = apply_views(x_, draw_views(config_, aug_, b_, ctx_.size), b_, ctx_.size);
    auto loss = group_loss(ctx_, weights_, xin, K_, target_, mean_, var_);
    adam_->zero_grad();
    scaler_.scale(loss.total.sum()).backward();
    scaler_.step(*adam_);
    torch::NoGradGuard ng;
    x_.copy_(torch::max(torch::min(x_, ctx_.hi), ctx_.lo));
    ce_sum_ += loss.ce.detach();
    bn_sum_ += loss.bn.detach();
    ++in_window_;
  }

  // Closes the trace window ending at iteration `it` (exclusive); one host copy per window.
  std::pair<double, double> close_window(int64_t it) {
    auto ce = (ce_sum_ / in_window_).cpu(), bn = (bn_sum_ / in_window_).cpu();
    for (int64_t k = 0; k < K_; ++k) {
      const double ce_k = ce[k].item<double>(), bn_k = bn[k].item<double>();
      if (!std::isfinite(ce_k) || !std::isfinite(bn_k))
        throw std::runtime_error(fmt::format(
            "recover: the loss of {} is not finite (ce {}, bn {}) in the iterations before {}; "
            "lower --lr",
            describe(group_[k]), ce_k, bn_k, it));
      traces_[k].push_back({it, ce_k, bn_k});
    }
    ce_sum_.zero_(), bn_sum_.zero_(), in_window_ = 0;
    return {ce.mean().item<double>(), bn.mean().item<double>()};
  }
  int64_t in_window() const { return in_window_; }

  void save(int64_t it, double seconds) {
    TensorFile f;
    f.tensors["x"] = x_.detach();
    f.tensors["ce_sum"] = ce_sum_, f.tensors["bn_sum"] = bn_sum_;
    for (auto& [k, t] : engine::optimizer_tensors(*adam_)) f.tensors[k] = t;
    json traces = json::array();
    for (const auto& tr : traces_) {
      json t = json::array();
      for (const auto& p : tr) t.push_back({p.it, p.ce, p.bn});
      traces.push_back(t);
    }
    f.metadata["state"] = json{
        {"it", it},
        {"in_window", in_window_},
        {"seconds", prior_seconds_ + seconds},
        {"traces", traces}}.dump();
    save_safetensors(path_, f);
  }

  // Quantized images, traces, and what the teacher says about the saved pixels.
  std::vector<UnitResult> finish(double seconds) {
    torch::NoGradGuard ng;
    auto u8 = data::denormalize_to_u8(x_, ctx_.norm).cpu();
    auto pred = ctx_.teacher->forward(data::normalize(u8, ctx_.norm, ctx_.device)).argmax(1);
    auto correct = pred.eq(target_).view({K_, b_}).to(torch::kFloat64).sum(1).cpu();
    std::vector<UnitResult> results(static_cast<size_t>(K_));
    for (int64_t k = 0; k < K_; ++k) {
      auto& r = results[k];
      r.images = u8.narrow(0, k * b_, b_).clone();
      r.trace = std::move(traces_[k]);
      r.ce = r.trace.back().ce, r.bn = r.trace.back().bn;
      r.ce_start = r.trace.front().ce, r.bn_start = r.trace.front().bn;
      r.correct = correct[k].item<double>();
      r.seconds = (prior_seconds_ + seconds) / static_cast<double>(K_);
      r.attempts = group_[k].attempt + 1;
    }
    return results;
  }

 private:
  const GroupContext& ctx_;
  engine::GradScaler scaler_{ctx_.precision.amp, ctx_.device};
  const RecoverConfig& config_;
  const std::vector<Unit>& group_;
  const int64_t K_, b_;
  const std::string path_;
  const LossWeights weights_;
  torch::Tensor x_, target_, ce_sum_, bn_sum_;
  std::vector<torch::Tensor> mean_, var_;
  std::vector<Rng> aug_;
  std::unique_ptr<torch::optim::Adam> adam_;
  std::vector<std::vector<TracePoint>> traces_;
  int64_t in_window_ = 0;
  double prior_seconds_ = 0;
};

}  // namespace

std::vector<UnitResult> optimize_group(const GroupContext& ctx, const std::vector<Unit>& group,
                                       Progress& progress, int64_t& work_done) {
  const auto start = Clock::now();
  const auto& config = *ctx.config;
  GroupRun run(ctx, group);
  const int64_t K = static_cast<int64_t>(group.size());
  const int64_t first = run.resume();
  work_done += first * K;
  if (first > 0) progress.skip(first * K);  // a killed run's iterations: done, not in the rate
  const int64_t window = trace_window(config.iterations);
  const std::string who = config.class_wise() ? fmt::format("class {}", group.front().label)
                                              : fmt::format("batch {}", group.front().chunk);
  for (int64_t it = first; it < config.iterations; ++it) {
    run.step(it);
    work_done += K;
    if (run.in_window() == window || it + 1 == config.iterations) {
      const auto [ce, bn] = run.close_window(it + 1);
      progress.update(work_done, fmt::format("{} ce {:.3f} bn {:.3f}", who, ce, bn));
    } else {
      progress.update(work_done);
    }
    if (config.checkpoint_every > 0 && (it + 1) % config.checkpoint_every == 0 &&
        it + 1 < config.iterations)
      run.save(it + 1, seconds_since(start));
  }
  return run.finish(seconds_since(start));
}

}  // namespace lpld::recover
