#include "models/batchnorm.h"

namespace lpld::models {

BatchNorm2dImpl::BatchNorm2dImpl(const BatchNorm2dOptions& options_) : options(options_) {
  reset();
}

void BatchNorm2dImpl::reset() {
  const int64_t c = options.num_features();
  weight = register_parameter("weight", torch::ones({c}));
  bias = register_parameter("bias", torch::zeros({c}));
  running_mean = register_buffer("running_mean", torch::zeros({c}));
  running_var = register_buffer("running_var", torch::ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kInt64));
}

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& x) {
  if (sink_ != nullptr) (*sink_)[index_] = x;
  if (is_training()) num_batches_tracked.add_(1);
  return torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(),
                           options.momentum(), options.eps(),
                           /*cudnn_enabled=*/at::globalContext().userEnabledCuDNN());
}

}  // namespace lpld::models
