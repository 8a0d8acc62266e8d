#include "engine/data_parallel.h"

namespace lpld::engine {

std::pair<int64_t, int64_t> shard_rows(int64_t n, const Dist* dist) {
  if (!dist) return {0, n};
  const int64_t r = dist->rank(), N = dist->world_size();
  return {n * r / N, n * (r + 1) / N};
}

void all_reduce_gradients(Dist& dist, torch::nn::Module& model, const std::string& what) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat;
  auto params = model.parameters();
  for (auto& p : params)
    flat.push_back(p.grad().defined() ? p.grad().reshape(-1) : torch::zeros({p.numel()}, p.options()));
  std::vector<torch::Tensor> buffer{torch::cat(flat)};
  dist.all_reduce_sum(buffer, what);
  int64_t at = 0;
  for (auto& p : params) {
    auto g = buffer[0].narrow(0, at, p.numel()).view_as(p);
    if (p.grad().defined())
      p.mutable_grad().copy_(g);
    else
      p.mutable_grad() = g.clone();
    at += p.numel();
  }
}

void average_buffers(Dist& dist, torch::nn::Module& model, const std::string& what) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> buffers;
  for (auto& b : model.buffers())
    if (b.is_floating_point()) buffers.push_back(b);
  dist.all_reduce_sum(buffers, what);
  for (auto& b : buffers) b.div_(static_cast<double>(dist.world_size()));
}

}  // namespace lpld::engine
