#include "labels/replay.h"

namespace lpld::labels {

std::vector<int64_t> epoch_order(const LabelHeader& h, int64_t epoch) {
  return Rng(derive_seed(h.seed, kTagEpochOrder, static_cast<uint64_t>(epoch)))
      .permutation(h.num_images);
}

StepPlan plan_step(const LabelHeader& h, int64_t step, const std::vector<int64_t>* order) {
  const int64_t bpe = h.batches_per_epoch();
  const int64_t epoch = step / bpe, b = step % bpe;
  std::vector<int64_t> own;
  if (order == nullptr) {
    own = epoch_order(h, epoch);
    order = &own;
  }
  StepPlan p;
  p.step = step;
  const int64_t n = h.step_size(step);
  p.indices.assign(order->begin() + b * h.batch_size, order->begin() + b * h.batch_size + n);
  Rng view_rng(derive_seed(h.seed, kTagView, static_cast<uint64_t>(step)));
  for (int64_t i = 0; i < n; ++i)
    p.views.push_back(data::random_view(view_rng, h.image_size, h.image_size, h.crop));
  p.cutmix = h.cutmix;
  if (h.cutmix) {
    Rng mix_rng(derive_seed(h.seed, kTagCutMix, static_cast<uint64_t>(step)));
    p.mix = data::random_cutmix(mix_rng, n, h.image_size, h.image_size, h.cutmix_alpha);
  }
  return p;
}

StepPlan StepPlanner::plan(int64_t step) {
  const int64_t epoch = step / header_.batches_per_epoch();
  auto it = orders_.find(epoch);
  if (it == orders_.end()) {
    if (orders_.size() >= 16) orders_.erase(orders_.begin());
    it = orders_.emplace(epoch, epoch_order(header_, epoch)).first;
  }
  return plan_step(header_, step, &it->second);
}

torch::Tensor render_step(const torch::Tensor& step_u8, const data::NormTensors& norm,
                          const StepPlan& plan, int64_t size) {
  TORCH_CHECK(step_u8.size(0) == static_cast<int64_t>(plan.indices.size()),
              "render_step: one image per planned index");
  auto batch = data::render_views(data::normalize(step_u8, norm), plan.views, size);
  return plan.cutmix ? data::apply_cutmix(batch, plan.mix) : batch;
}

json describe_step(const LabelHeader& h, const StepPlan& p) {
  const int64_t bpe = h.batches_per_epoch();
  json views = json::array(), classes = json::array();
  for (const auto& v : p.views)
    views.push_back({{"crop", {v.x0, v.y0, v.w, v.h}}, {"flip", v.flip}});
  for (int64_t i : p.indices) classes.push_back(h.labels.at(static_cast<size_t>(i)));
  json mix = nullptr;
  if (p.cutmix) {
    const double area = static_cast<double>((p.mix.x2 - p.mix.x1) * (p.mix.y2 - p.mix.y1));
    mix = {{"lambda", p.mix.lambda},
           {"box", {p.mix.x1, p.mix.y1, p.mix.x2, p.mix.y2}},
           {"pasted", area / static_cast<double>(h.image_size * h.image_size)},
           {"partners", p.mix.perm}};
  }
  return {{"step", p.step},      {"epoch", p.step / bpe}, {"batch", p.step % bpe},
          {"images", p.indices}, {"classes", classes},    {"views", views},
          {"cutmix", mix}};
}

}  // namespace lpld::labels
