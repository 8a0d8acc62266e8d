// The dataset-distillation ConvNet with BatchNorm: D blocks of
// conv3x3 (padding 1) -> BN -> ReLU -> avgpool2, width W, then a linear head.
// Named convnet-dD-wW; convnet-d3-w64 is the default for 28-32 px images.
#pragma once
#include "models/classifier.h"

namespace lpld::models {

struct ConvNetOptions {
  ConvNetOptions(int64_t num_classes, int64_t in_channels, int64_t image_size)
      : num_classes_(num_classes), in_channels_(in_channels), image_size_(image_size) {}
  TORCH_ARG(int64_t, num_classes);
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, image_size);  // input H = W
  TORCH_ARG(int64_t, depth) = 3;
  TORCH_ARG(int64_t, width) = 64;
};

class ConvNetImpl : public ClassifierImpl {
 public:
  explicit ConvNetImpl(const ConvNetOptions& options);
  torch::Tensor features(const torch::Tensor& x) override;  // [N, C, S, S] -> [N, W*s*s]
  torch::Tensor head(const torch::Tensor& f) override;

  ConvNetOptions options;
  // features.{4i}: conv, .{4i+1}: BN, .{4i+2}: ReLU, .{4i+3}: avgpool (the DD ConvNet names).
  torch::nn::Sequential feature_layers{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ConvNet);

}  // namespace lpld::models
