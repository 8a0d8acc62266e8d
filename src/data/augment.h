// Batched, device-side augmentation shared by squeeze, recover, relabel and train.
//
// A View is a RandomResizedCrop box (fractions of the source image) plus a flip flag.
// render_views() resamples any number of images through their views in one grid_sample
// call: bilinear, align_corners=false, which is the same sampling as torchvision's
// crop-then-resize, and differentiable, so recover optimizes pixels through it.
// Views are drawn from lpld::Rng with torchvision's get_params algorithm, so a stored
// (seed, step) regenerates exactly the same views anywhere (relabel -> train replay).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "core/rng.h"
#include "data/dataset.h"

namespace lpld::data {

struct View {
  float x0 = 0, y0 = 0, w = 1, h = 1;  // crop box as fractions of width / height
  bool flip = false;
};

struct CropOptions {
  double scale_lo = 0.08, scale_hi = 1.0;             // fraction of the area
  double ratio_lo = 3.0 / 4.0, ratio_hi = 4.0 / 3.0;  // aspect ratio w/h
  bool flip = true;                                   // random horizontal flip
};

// torchvision RandomResizedCrop.get_params (integer pixel box, 10 tries, centre fallback)
// on an H x W image, then a fair coin for the flip when options.flip.
View random_view(Rng& rng, int64_t height, int64_t width, const CropOptions& options);

// The identity view.
inline View full_view() { return View{}; }

// images: float [N, C, H, W]; views: N entries -> float [N, C, size, size].
torch::Tensor render_views(const torch::Tensor& images, const std::vector<View>& views,
                           int64_t size);

// Evaluation of images that are not already S x S, as torchvision evaluates ImageNet models:
// resize so the short side is floor(S / 0.875) (256 for 224; bilinear with antialiasing, as
// PIL's resize), then the central S x S crop (offsets rounded as torchvision's center_crop).
// images: float [N, C, H, W] -> [N, C, S, S]; S x S input is returned as it is.
torch::Tensor eval_resize_crop(const torch::Tensor& images, int64_t size);

// CutMix within one label batch: image i's box region is replaced by image perm[i]'s.
struct CutMix {
  std::vector<int64_t> perm;
  double lambda = 1.0;                     // Beta(alpha, alpha) draw
  int64_t x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // box, pixels, [x1, x2) x [y1, y2)
};

// FKD/SRe2L rand_bbox: cut ratio sqrt(1 - lambda), uniform integer centre, clipped box.
CutMix random_cutmix(Rng& rng, int64_t batch, int64_t height, int64_t width, double alpha);
// images: [B, C, H, W] -> mixed copy (the input is not modified).
torch::Tensor apply_cutmix(const torch::Tensor& images, const CutMix& cutmix);

// A normalization's mean and std as float [1, C, 1, 1] tensors on a device: build once
// before a loop that normalizes many batches.
struct NormTensors {
  torch::Tensor mean, std;
  NormTensors(const Normalization& norm, const torch::Device& device);
};
// float [N, C, H, W] pixels in [0, 1] -> (x - mean) / std, on the images' device.
torch::Tensor normalize_unit(const torch::Tensor& images01, const Normalization& norm);
// uint8 [N, C, H, W] (any device) -> float normalized (x/255 - mean) / std on `device`.
torch::Tensor normalize(const torch::Tensor& images_u8, const Normalization& norm,
                        const torch::Device& device);
// The same, on the device of `n`.
torch::Tensor normalize(const torch::Tensor& images_u8, const NormTensors& n);
// float normalized [N, C, H, W] -> uint8 with rounding (not truncation: METHOD.md flaws).
torch::Tensor denormalize_to_u8(const torch::Tensor& images, const Normalization& norm);
// The per-channel valid range [(0 - m) / s, (1 - m) / s] as [1, C, 1, 1] tensors.
std::pair<torch::Tensor, torch::Tensor> pixel_bounds(const Normalization& norm,
                                                     const torch::Device& device);

}  // namespace lpld::data
