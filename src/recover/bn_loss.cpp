#include "recover/bn_loss.h"

namespace lpld::recover {

torch::Tensor bn_matching_loss(const std::vector<torch::Tensor>& inputs, int64_t groups,
                               const std::vector<torch::Tensor>& target_mean,
                               const std::vector<torch::Tensor>& target_var,
                               double first_bn_multiplier) {
  torch::Tensor total;
  for (size_t l = 0; l < inputs.size(); ++l) {
    const auto& x = inputs[l];
    auto g = x.reshape({groups, x.size(0) / groups, x.size(1), x.size(2), x.size(3)});
    auto mean = g.mean({1, 3, 4});
    auto var = (g - mean.unsqueeze(1).unsqueeze(3).unsqueeze(4)).square().mean({1, 3, 4});
    auto term = (mean - target_mean[l]).norm(2, {1}) + (var - target_var[l]).norm(2, {1});
    if (l == 0) term = term * first_bn_multiplier;
    total = total.defined() ? total + term : term;
  }
  return total;
}

torch::Tensor tv_l2_prior(const torch::Tensor& images, int64_t groups) {
  using torch::indexing::Slice;
  auto dx = images.index({Slice(), Slice(), Slice(), Slice(1, torch::indexing::None)}) -
            images.index({Slice(), Slice(), Slice(), Slice(torch::indexing::None, -1)});
  auto dy = images.index({Slice(), Slice(), Slice(1, torch::indexing::None), Slice()}) -
            images.index({Slice(), Slice(), Slice(torch::indexing::None, -1), Slice()});
  // per group: ||dx||_2 + ||dy||_2 over all its images
  return dx.reshape({groups, -1}).norm(2, {1}) + dy.reshape({groups, -1}).norm(2, {1});
}

}  // namespace lpld::recover
