// The interface every model implements: penultimate features, then a linear head.
// Models are created by name (registry.h) and saved/loaded by parameter name.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "models/batchnorm.h"

namespace lpld::models {

class ClassifierImpl : public torch::nn::Module {
 public:
  // x: [N, C, H, W] normalized images -> [N, F] penultimate features.
  virtual torch::Tensor features(const torch::Tensor& x) = 0;
  // f: [N, F] -> [N, num_classes] logits.
  virtual torch::Tensor head(const torch::Tensor& f) = 0;
  torch::Tensor forward(const torch::Tensor& x) { return head(features(x)); }

  // Every BatchNorm layer with its qualified name, in forward order.
  std::vector<std::pair<std::string, std::shared_ptr<BatchNorm2dImpl>>> batchnorms();
};
using Classifier = std::shared_ptr<ClassifierImpl>;

// Installs a capture on every BatchNorm of a model for its lifetime: after a forward
// pass, inputs()[l] is the input of BN layer l (batchnorms() order), still attached to
// the autograd graph.
class BnCapture {
 public:
  explicit BnCapture(ClassifierImpl& model);
  ~BnCapture();
  BnCapture(const BnCapture&) = delete;
  BnCapture& operator=(const BnCapture&) = delete;
  const std::vector<torch::Tensor>& inputs() const { return inputs_; }

 private:
  std::vector<std::shared_ptr<BatchNorm2dImpl>> layers_;
  std::vector<torch::Tensor> inputs_;
};

}  // namespace lpld::models
