// ResNet-18/34/50 with torchvision's parameter names (conv1, bn1, layer1.0.conv1, ...,
// layerK.0.downsample.{0,1}, fc) so torchvision weights map one to one.
// The small-image stem (3x3 stride-1 conv1, no max-pool) is the Tiny-ImageNet / CIFAR
// variant used by the LPLD recipes (METHOD.md Stage 2).
#pragma once
#include "models/classifier.h"

namespace lpld::models {

struct ResNetOptions {
  ResNetOptions(int64_t depth, int64_t num_classes, int64_t in_channels)
      : depth_(depth), num_classes_(num_classes), in_channels_(in_channels) {}
  TORCH_ARG(int64_t, depth);  // 18, 34 or 50
  TORCH_ARG(int64_t, num_classes);
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(bool, small_stem) = false;
};

class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNetImpl : public ClassifierImpl {
 public:
  explicit ResNetImpl(const ResNetOptions& options);
  torch::Tensor features(const torch::Tensor& x) override;  // [N, C, H, W] -> [N, 512*exp]
  torch::Tensor head(const torch::Tensor& f) override;

  ResNetOptions options;
  torch::nn::Conv2d conv1{nullptr};
  BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet);

}  // namespace lpld::models
