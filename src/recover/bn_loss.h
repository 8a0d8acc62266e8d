// The BN-matching loss of recover (METHOD.md Stage 2), for K groups packed in one batch:
//   loss_k = sum_l w_l (||mean_l,k - mu_l,k||_2 + ||var_l,k - var*_l,k||_2)
// where mean/var are the per-channel mean and biased variance of BN layer l's input over
// group k's images, w_0 = first_bn_multiplier, w_l = 1 otherwise.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace lpld::recover {

// inputs[l]: [K * b, C_l, H, W] (groups contiguous); target_mean[l], target_var[l]: [K, C_l].
// Returns [K].
torch::Tensor bn_matching_loss(const std::vector<torch::Tensor>& inputs, int64_t groups,
                               const std::vector<torch::Tensor>& target_mean,
                               const std::vector<torch::Tensor>& target_var,
                               double first_bn_multiplier);

// Total-variation prior per image group, [K]: the DeepInversion / SRe2L "loss_var_l2", the
// sum of the L2 norms (over the group's images) of the differences between each pixel and
// its right, lower, lower-left and lower-right neighbours.
torch::Tensor tv_l2_prior(const torch::Tensor& images, int64_t groups);

}  // namespace lpld::recover
