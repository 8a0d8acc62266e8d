#include "labels/replay.h"

#include <cstring>

#include "core/io.h"

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
  p.indices.assign(order->begin() + b * h.views.batch_size, order->begin() + b * h.views.batch_size + n);
  Rng view_rng(derive_seed(h.seed, kTagView, static_cast<uint64_t>(step)));
  for (int64_t i = 0; i < n; ++i)
    p.views.push_back(data::random_view(view_rng, h.image_size, h.image_size, h.views.crop));
  p.cutmix = h.views.cutmix;
  if (h.views.cutmix) {
    Rng mix_rng(derive_seed(h.seed, kTagCutMix, static_cast<uint64_t>(step)));
    p.mix = data::random_cutmix(mix_rng, n, h.image_size, h.image_size, h.views.cutmix_alpha);
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

namespace {
template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
T get(const std::string& in, size_t& pos) {
  T v;
  std::memcpy(&v, in.data() + pos, sizeof v);
  pos += sizeof v;
  return v;
}
}  // namespace

uint64_t plan_digest(const StepPlan& p) {
  std::string bytes;
  put<int64_t>(bytes, kReplayVersion);
  put<int64_t>(bytes, p.step);
  for (int64_t i : p.indices) put<int64_t>(bytes, i);
  for (const auto& v : p.views) {
    put<float>(bytes, v.x0), put<float>(bytes, v.y0), put<float>(bytes, v.w),
        put<float>(bytes, v.h);
    put<uint8_t>(bytes, v.flip);
  }
  put<uint8_t>(bytes, p.cutmix);
  if (p.cutmix) {
    put<double>(bytes, p.mix.lambda);
    for (int64_t c : {p.mix.x1, p.mix.y1, p.mix.x2, p.mix.y2}) put<int64_t>(bytes, c);
    for (int64_t q : p.mix.perm) put<int64_t>(bytes, q);
  }
  return xxh64(bytes.data(), bytes.size());
}

std::string encode_views(const LabelHeader& h, const StepPlan& p) {
  std::string out;
  for (int64_t i : p.indices) put<uint32_t>(out, static_cast<uint32_t>(i));
  for (const auto& v : p.views) {
    put<float>(out, v.x0), put<float>(out, v.y0), put<float>(out, v.w), put<float>(out, v.h);
  }
  for (const auto& v : p.views) put<uint8_t>(out, v.flip);
  if (h.views.cutmix) {
    put<float>(out, static_cast<float>(p.mix.lambda));
    for (int64_t c : {p.mix.x1, p.mix.y1, p.mix.x2, p.mix.y2})
      put<uint16_t>(out, static_cast<uint16_t>(c));
    for (int64_t q : p.mix.perm) put<uint16_t>(out, static_cast<uint16_t>(q));
  }
  return out;
}

StepPlan decode_views(const LabelHeader& h, int64_t step, const std::string& block) {
  const int64_t n = h.step_size(step);
  TORCH_CHECK(static_cast<int64_t>(block.size()) == h.views_bytes(n), "views block size mismatch");
  StepPlan p;
  p.step = step;
  size_t pos = 0;
  for (int64_t i = 0; i < n; ++i) p.indices.push_back(get<uint32_t>(block, pos));
  p.views.resize(static_cast<size_t>(n));
  for (auto& v : p.views) {
    v.x0 = get<float>(block, pos), v.y0 = get<float>(block, pos);
    v.w = get<float>(block, pos), v.h = get<float>(block, pos);
  }
  for (auto& v : p.views) v.flip = get<uint8_t>(block, pos) != 0;
  p.cutmix = h.views.cutmix;
  if (h.views.cutmix) {
    p.mix.lambda = get<float>(block, pos);
    p.mix.x1 = get<uint16_t>(block, pos), p.mix.y1 = get<uint16_t>(block, pos);
    p.mix.x2 = get<uint16_t>(block, pos), p.mix.y2 = get<uint16_t>(block, pos);
    for (int64_t i = 0; i < n; ++i) p.mix.perm.push_back(get<uint16_t>(block, pos));
  }
  return p;
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
