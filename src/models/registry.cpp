#include "models/registry.h"

#include <regex>

#include "core/error.h"
#include "models/convnet.h"
#include "models/resnet.h"

namespace lpld::models {

std::vector<std::pair<std::string, std::shared_ptr<BatchNorm2dImpl>>> ClassifierImpl::batchnorms() {
  std::vector<std::pair<std::string, std::shared_ptr<BatchNorm2dImpl>>> out;
  // named_modules() is in registration order, which is forward order for our models.
  for (const auto& item : named_modules(/*name_prefix=*/"", /*include_self=*/false))
    if (auto bn = std::dynamic_pointer_cast<BatchNorm2dImpl>(item.value()))
      out.emplace_back(item.key(), bn);
  return out;
}

BnCapture::BnCapture(ClassifierImpl& model) {
  for (auto& [name, bn] : model.batchnorms()) layers_.push_back(bn);
  inputs_.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->set_capture(&inputs_, i);
}

BnCapture::~BnCapture() {
  for (auto& bn : layers_) bn->set_capture(nullptr, 0);
}

Classifier make_model(const ModelSpec& spec) {
  check_arg(spec.num_classes >= 2, "num_classes", "must be at least 2");
  check_arg(spec.in_channels >= 1, "channels", "must be at least 1");
  check_arg(spec.image_size >= 8, "image size", "must be at least 8 px");
  std::smatch m;
  if (std::regex_match(spec.arch, m, std::regex(R"(convnet-d(\d+)-w(\d+))"))) {
    const int64_t depth = std::stoll(m[1]), width = std::stoll(m[2]);
    check_arg(depth >= 1 && depth <= 8 && width >= 1 && width <= 4096, "--arch",
              "'" + spec.arch + "': depth must be 1-8 and width 1-4096");
    return std::make_shared<ConvNetImpl>(
        ConvNetOptions(spec.num_classes, spec.in_channels, spec.image_size)
            .depth(depth)
            .width(width));
  }
  if (std::regex_match(spec.arch, m, std::regex(R"(resnet(18|34|50)(-small|-imagenet)?)"))) {
    const bool small = m[2].matched ? m[2] == "-small" : spec.image_size <= 64;
    return std::make_shared<ResNetImpl>(
        ResNetOptions(std::stoll(m[1]), spec.num_classes, spec.in_channels).small_stem(small));
  }
  throw std::invalid_argument("--arch: unknown architecture '" + spec.arch +
                              "' (use convnet-dD-wW, resnet18, resnet34, resnet50, "
                              "optionally -small or -imagenet)");
}

}  // namespace lpld::models
