// BatchNorm2d with torchvision's parameter names (weight, bias, running_mean,
// running_var, num_batches_tracked) that can hand out its *input* during a forward pass.
// recover matches the batch statistics of these inputs to stored targets, and squeeze
// accumulates per-class statistics of them (METHOD.md Stages 1-2). When no capture is
// installed the layer is a plain batch_norm call: no cost when nobody asks.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace lpld::models {

struct BatchNorm2dOptions {
  BatchNorm2dOptions(int64_t num_features) : num_features_(num_features) {}
  TORCH_ARG(int64_t, num_features);
  TORCH_ARG(double, eps) = 1e-5;
  TORCH_ARG(double, momentum) = 0.1;
};

class BatchNorm2dImpl : public torch::nn::Cloneable<BatchNorm2dImpl> {
 public:
  explicit BatchNorm2dImpl(const BatchNorm2dOptions& options);
  void reset() override;
  // x: [N, C, H, W] -> [N, C, H, W]
  torch::Tensor forward(const torch::Tensor& x);
  // While `sink` is set, forward stores its input at (*sink)[index].
  void set_capture(std::vector<torch::Tensor>* sink, size_t index) {
    sink_ = sink;
    index_ = index;
  }

  BatchNorm2dOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  std::vector<torch::Tensor>* sink_ = nullptr;
  size_t index_ = 0;
};
TORCH_MODULE(BatchNorm2d);

}  // namespace lpld::models
