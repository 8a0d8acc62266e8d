#include "data/augment.h"

#include <cmath>

namespace lpld::data {

View random_view(Rng& rng, int64_t H, int64_t W, const CropOptions& o) {
  const double area = static_cast<double>(H) * W;
  const double log_lo = std::log(o.ratio_lo), log_hi = std::log(o.ratio_hi);
  int64_t i = -1, j = 0, h = H, w = W;
  for (int attempt = 0; attempt < 10 && i < 0; ++attempt) {
    const double target = area * rng.uniform(o.scale_lo, o.scale_hi);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int64_t cw = std::llround(std::sqrt(target * aspect));
    const int64_t ch = std::llround(std::sqrt(target / aspect));
    if (cw > 0 && cw <= W && ch > 0 && ch <= H) {
      i = rng.range(0, H - ch);
      j = rng.range(0, W - cw);
      h = ch;
      w = cw;
    }
  }
  if (i < 0) {  // fallback: central crop at the nearest allowed aspect ratio
    const double in_ratio = static_cast<double>(W) / H;
    if (in_ratio < o.ratio_lo) {
      w = W;
      h = std::llround(w / o.ratio_lo);
    } else if (in_ratio > o.ratio_hi) {
      h = H;
      w = std::llround(h * o.ratio_hi);
    } else {
      w = W;
      h = H;
    }
    i = (H - h) / 2;
    j = (W - w) / 2;
  }
  View v;
  v.x0 = static_cast<float>(j) / W;
  v.y0 = static_cast<float>(i) / H;
  v.w = static_cast<float>(w) / W;
  v.h = static_cast<float>(h) / H;
  v.flip = o.flip && rng.coin();
  return v;
}

torch::Tensor render_views(const torch::Tensor& images, const std::vector<View>& views,
                           int64_t size) {
  const int64_t n = images.size(0);
  TORCH_CHECK(static_cast<int64_t>(views.size()) == n, "render_views: one view per image");
  // theta maps output coords u in [-1, 1] to input coords: x = cx + w * u (w = half width
  // in normalized units, since the full width spans 2); a flip negates the scale.
  std::vector<float> theta(static_cast<size_t>(n) * 6);
  for (int64_t k = 0; k < n; ++k) {
    const View& v = views[k];
    float* t = &theta[k * 6];
    t[0] = v.flip ? -v.w : v.w;
    t[1] = 0;
    t[2] = 2 * v.x0 + v.w - 1;
    t[3] = 0;
    t[4] = v.h;
    t[5] = 2 * v.y0 + v.h - 1;
  }
  auto th = torch::from_blob(theta.data(), {n, 2, 3}, torch::kFloat32)
                .to(images.device(), images.scalar_type());
  auto grid = torch::affine_grid_generator(th, {n, images.size(1), size, size},
                                           /*align_corners=*/false);
  return torch::grid_sampler(images, grid, /*interpolation_mode=*/0, /*padding_mode=*/1,
                             /*align_corners=*/false);
}

torch::Tensor eval_resize_crop(const torch::Tensor& images, int64_t S) {
  const int64_t h = images.size(2), w = images.size(3);
  if (h == S && w == S) return images;
  const auto short_side = static_cast<int64_t>(static_cast<double>(S) / 0.875);
  // torchvision: the short side becomes `short_side`, the long one int(short_side * long / short)
  const int64_t nh = h <= w ? short_side : short_side * h / w;
  const int64_t nw = h <= w ? short_side * w / h : short_side;
  namespace F = torch::nn::functional;
  auto r = F::interpolate(images, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{nh, nw})
                                      .mode(torch::kBilinear)
                                      .align_corners(false)
                                      .antialias(true));
  // Python rounds halves to even (nearbyint under the default rounding mode)
  const auto top = static_cast<int64_t>(std::nearbyint((nh - S) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint((nw - S) / 2.0));
  return r.narrow(2, top, S).narrow(3, left, S).contiguous();
}

CutMix random_cutmix(Rng& rng, int64_t batch, int64_t H, int64_t W, double alpha) {
  CutMix c;
  c.perm = rng.permutation(batch);
  c.lambda = rng.beta(alpha, alpha);
  const double cut = std::sqrt(1.0 - c.lambda);
  const int64_t cw = static_cast<int64_t>(W * cut), ch = static_cast<int64_t>(H * cut);
  const int64_t cx = rng.below(W), cy = rng.below(H);
  c.x1 = std::clamp<int64_t>(cx - cw / 2, 0, W);
  c.x2 = std::clamp<int64_t>(cx + cw / 2, 0, W);
  c.y1 = std::clamp<int64_t>(cy - ch / 2, 0, H);
  c.y2 = std::clamp<int64_t>(cy + ch / 2, 0, H);
  return c;
}

torch::Tensor apply_cutmix(const torch::Tensor& images, const CutMix& c) {
  torch::Tensor out = images.clone();
  if (c.x2 <= c.x1 || c.y2 <= c.y1) return out;
  using torch::indexing::Slice;
  auto perm = torch::tensor(c.perm, torch::kInt64).to(images.device());
  auto src =
      images.index_select(0, perm).index({Slice(), Slice(), Slice(c.y1, c.y2), Slice(c.x1, c.x2)});
  out.index_put_({Slice(), Slice(), Slice(c.y1, c.y2), Slice(c.x1, c.x2)}, src);
  return out;
}

NormTensors::NormTensors(const Normalization& n, const torch::Device& d) {
  const int64_t c = static_cast<int64_t>(n.mean.size());
  mean = torch::tensor(n.mean, torch::kFloat32).view({1, c, 1, 1}).to(d);
  std = torch::tensor(n.std, torch::kFloat32).view({1, c, 1, 1}).to(d);
}

torch::Tensor normalize_unit(const torch::Tensor& images01, const Normalization& norm) {
  NormTensors n(norm, images01.device());
  return (images01 - n.mean) / n.std;
}

torch::Tensor normalize(const torch::Tensor& images_u8, const NormTensors& n) {
  return (images_u8.to(n.mean.device()).to(torch::kFloat32).div_(255.0f) - n.mean) / n.std;
}

torch::Tensor normalize(const torch::Tensor& images_u8, const Normalization& norm,
                        const torch::Device& device) {
  return normalize(images_u8, NormTensors(norm, device));
}

torch::Tensor denormalize_to_u8(const torch::Tensor& images, const Normalization& norm) {
  NormTensors n(norm, images.device());
  return (images.detach().to(torch::kFloat32) * n.std + n.mean)
      .clamp(0.0, 1.0)
      .mul(255.0)
      .round()
      .to(torch::kUInt8);
}

std::pair<torch::Tensor, torch::Tensor> pixel_bounds(const Normalization& norm,
                                                     const torch::Device& device) {
  NormTensors n(norm, device);
  return {(0 - n.mean) / n.std, (1 - n.mean) / n.std};
}

}  // namespace lpld::data
