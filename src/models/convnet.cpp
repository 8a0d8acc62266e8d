#include "models/convnet.h"

#include "core/error.h"

namespace lpld::models {

ConvNetImpl::ConvNetImpl(const ConvNetOptions& o) : options(o) {
  int64_t channels = o.in_channels(), size = o.image_size();
  feature_layers = torch::nn::Sequential();
  for (int64_t i = 0; i < o.depth(); ++i) {
    feature_layers->push_back(torch::nn::Conv2d(
        torch::nn::Conv2dOptions(channels, o.width(), /*kernel_size=*/3).padding(1)));
    feature_layers->push_back(BatchNorm2d(BatchNorm2dOptions(o.width())));
    feature_layers->push_back(torch::nn::ReLU());
    feature_layers->push_back(torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(2)));
    channels = o.width();
    size /= 2;
  }
  register_module("features", feature_layers);
  check_arg(size >= 1, "--arch",
            "convnet depth " + std::to_string(o.depth()) + " is too deep for " +
                std::to_string(o.image_size()) + " px images");
  fc = register_module("classifier", torch::nn::Linear(channels * size * size, o.num_classes()));
}

torch::Tensor ConvNetImpl::features(const torch::Tensor& x) {
  return feature_layers->forward(x).flatten(1);
}

torch::Tensor ConvNetImpl::head(const torch::Tensor& f) { return fc->forward(f); }

}  // namespace lpld::models
