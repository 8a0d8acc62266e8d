#include "engine/optimizer_state.h"

#include "core/error.h"

namespace lpld::engine {
namespace {
std::string key_of(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }
}  // namespace

std::map<std::string, torch::Tensor> optimizer_tensors(torch::optim::Optimizer& opt) {
  std::map<std::string, torch::Tensor> out;
  auto& params = opt.param_groups().at(0).params();
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = opt.state().find(key_of(params[i]));
    if (it == opt.state().end()) continue;
    const std::string pre = "opt." + std::to_string(i) + ".";
    if (auto* a = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get())) {
      out[pre + "exp_avg"] = a->exp_avg();
      out[pre + "exp_avg_sq"] = a->exp_avg_sq();
      out[pre + "step"] = torch::tensor(a->step(), torch::kInt64);
    } else if (auto* s = dynamic_cast<torch::optim::SGDParamState*>(it->second.get())) {
      out[pre + "momentum_buffer"] = s->momentum_buffer();
    }
  }
  return out;
}

void load_optimizer_tensors(torch::optim::Optimizer& opt,
                            const std::map<std::string, torch::Tensor>& tensors,
                            const std::string& path) {
  auto& params = opt.param_groups().at(0).params();
  const bool adamw = dynamic_cast<torch::optim::AdamW*>(&opt) != nullptr;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string pre = "opt." + std::to_string(i) + ".";
    const auto& p = params[i];
    if (adamw) {
      auto m = tensors.find(pre + "exp_avg");
      if (m == tensors.end()) continue;
      auto v = tensors.find(pre + "exp_avg_sq");
      auto st = tensors.find(pre + "step");
      check_file(v != tensors.end() && st != tensors.end() && m->second.sizes() == p.sizes(), path,
                 "optimizer state of parameter " + std::to_string(i) + " is damaged");
      auto state = std::make_unique<torch::optim::AdamWParamState>();
      state->step(st->second.item<int64_t>());
      state->exp_avg(m->second.to(p.device()).clone());
      state->exp_avg_sq(v->second.to(p.device()).clone());
      opt.state()[key_of(p)] = std::move(state);
    } else {
      auto m = tensors.find(pre + "momentum_buffer");
      if (m == tensors.end()) continue;
      check_file(m->second.sizes() == p.sizes(), path,
                 "optimizer state of parameter " + std::to_string(i) + " has the wrong shape");
      auto state = std::make_unique<torch::optim::SGDParamState>();
      state->momentum_buffer(m->second.to(p.device()).clone());
      opt.state()[key_of(p)] = std::move(state);
    }
  }
}

}  // namespace lpld::engine
