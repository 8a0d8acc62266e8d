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
  using torch::indexing::None;
  using torch::indexing::Slice;
  const auto all = Slice(), head = Slice(None, -1), tail = Slice(1, None);
  auto at = [&](const Slice& rows, const Slice& cols) {
    return images.index({all, all, rows, cols});
  };
  auto norm = [&](const torch::Tensor& d) { return d.reshape({groups, -1}).norm(2, {1}); };
  return norm(at(all, head) - at(all, tail)) +    // horizontal neighbours
         norm(at(head, all) - at(tail, all)) +    // vertical
         norm(at(tail, head) - at(head, tail)) +  // anti-diagonal
         norm(at(head, head) - at(tail, tail));   // diagonal
}

}  // namespace lpld::recover
