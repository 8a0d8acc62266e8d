#include "engine/losses.h"

namespace lpld::engine {

torch::Tensor kd_loss(const torch::Tensor& student, const torch::Tensor& teacher, double T,
                      bool squared) {
  auto log_p_s = torch::log_softmax(student / T, 1);
  auto log_p_t = torch::log_softmax(teacher / T, 1);
  auto loss = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean();
  return squared ? loss * (T * T) : loss;
}

torch::Tensor kd_loss_probs(const torch::Tensor& student, const torch::Tensor& p, double T) {
  auto log_p_s = torch::log_softmax(student / T, 1);
  // p log p with 0 log 0 = 0: classes top-k dropped contribute nothing
  return (torch::xlogy(p, p) - p * log_p_s).sum(1).mean();
}

}  // namespace lpld::engine
