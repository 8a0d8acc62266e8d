// Models by name:
//   convnet-dD-wW            ConvNet, D blocks of width W (default convnet-d3-w64)
//   resnet18|resnet34|resnet50         stem chosen by image size: small (3x3 s1, no
//                                      max-pool) up to 64 px, ImageNet stem above
//   resnet18-small / resnet18-imagenet (any depth): force the stem
#pragma once
#include <string>

#include "models/classifier.h"

namespace lpld::models {

struct ModelSpec {
  std::string arch;
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  int64_t image_size = 32;
};

// Throws invalid_argument naming --arch for an unknown or impossible architecture.
Classifier make_model(const ModelSpec& spec);

}  // namespace lpld::models
