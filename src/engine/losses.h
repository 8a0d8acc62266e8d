// Training losses shared by the stages.
#pragma once
#include <torch/torch.h>

namespace lpld::engine {

// Knowledge distillation (METHOD.md Stage 4): KL(softmax(teacher/T) || softmax(student/T)),
// mean over the batch; times T^2 when `squared` (the Tiny-ImageNet recipe).
// student, teacher: [N, C] logits -> scalar.
torch::Tensor kd_loss(const torch::Tensor& student, const torch::Tensor& teacher, double T,
                      bool squared);

// KL(p || softmax(student / T)), mean over the batch, for a given teacher distribution p [N, C]
// (rows summing to 1; zeros allowed: top-k labels). LPQLD's calibrated alignment uses a
// student temperature distinct from the teacher's.
torch::Tensor kd_loss_probs(const torch::Tensor& student, const torch::Tensor& p, double T);

}  // namespace lpld::engine
