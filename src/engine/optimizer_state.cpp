#include "engine/optimizer_state.h"

#include <sstream>
#include <type_traits>

#include "core/error.h"

namespace lpld::engine {
namespace {

// Optimizer state is keyed by the parameter's TensorImpl: as a string in libtorch 1.x, as the
// pointer itself in 2.x. Both builds compile through this.
template <typename Map>
typename Map::key_type key_of(const Map&, const torch::Tensor& p) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;  // as libtorch 1.x's c10::guts::to_string writes the pointer
    key << p.unsafeGetTensorImpl();
    return key.str();
  } else {
    return reinterpret_cast<Key>(p.unsafeGetTensorImpl());
  }
}

template <typename State>
void put_moments(std::map<std::string, torch::Tensor>& out, const std::string& pre,
                 const State& a) {
  out[pre + "exp_avg"] = a.exp_avg();
  out[pre + "exp_avg_sq"] = a.exp_avg_sq();
  out[pre + "step"] = torch::tensor(static_cast<int64_t>(a.step()), torch::kInt64);
}

template <typename State>
std::unique_ptr<State> moments(const std::map<std::string, torch::Tensor>& tensors,
                               const std::string& pre, const torch::Tensor& p,
                               const std::string& path) {
  auto m = tensors.find(pre + "exp_avg");
  if (m == tensors.end()) return nullptr;
  auto v = tensors.find(pre + "exp_avg_sq");
  auto st = tensors.find(pre + "step");
  check_file(v != tensors.end() && st != tensors.end() && m->second.sizes() == p.sizes() &&
                 v->second.sizes() == p.sizes(),
             path, "optimizer state of " + pre + " is damaged");
  auto state = std::make_unique<State>();
  state->step(st->second.item<int64_t>());
  state->exp_avg(m->second.to(p.device()).clone());
  state->exp_avg_sq(v->second.to(p.device()).clone());
  return state;
}

}  // namespace

std::map<std::string, torch::Tensor> optimizer_tensors(torch::optim::Optimizer& opt) {
  std::map<std::string, torch::Tensor> out;
  auto& params = opt.param_groups().at(0).params();
  auto& states = opt.state();
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = states.find(key_of(states, params[i]));
    if (it == states.end()) continue;
    const std::string pre = "opt." + std::to_string(i) + ".";
    if (auto* a = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get()))
      put_moments(out, pre, *a);
    else if (auto* b = dynamic_cast<torch::optim::AdamParamState*>(it->second.get()))
      put_moments(out, pre, *b);
    else if (auto* s = dynamic_cast<torch::optim::SGDParamState*>(it->second.get()))
      out[pre + "momentum_buffer"] = s->momentum_buffer();
  }
  return out;
}

void load_optimizer_tensors(torch::optim::Optimizer& opt,
                            const std::map<std::string, torch::Tensor>& tensors,
                            const std::string& path) {
  auto& params = opt.param_groups().at(0).params();
  auto& states = opt.state();
  const bool adamw = dynamic_cast<torch::optim::AdamW*>(&opt) != nullptr;
  const bool adam = dynamic_cast<torch::optim::Adam*>(&opt) != nullptr;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string pre = "opt." + std::to_string(i) + ".";
    const auto& p = params[i];
    if (adamw) {
      if (auto s = moments<torch::optim::AdamWParamState>(tensors, pre, p, path))
        states[key_of(states, p)] = std::move(s);
    } else if (adam) {
      if (auto s = moments<torch::optim::AdamParamState>(tensors, pre, p, path))
        states[key_of(states, p)] = std::move(s);
    } else {
      auto m = tensors.find(pre + "momentum_buffer");
      if (m == tensors.end()) continue;
      check_file(m->second.sizes() == p.sizes(), path,
                 "optimizer state of parameter " + std::to_string(i) + " has the wrong shape");
      auto state = std::make_unique<torch::optim::SGDParamState>();
      state->momentum_buffer(m->second.to(p.device()).clone());
      states[key_of(states, p)] = std::move(state);
    }
  }
}

}  // namespace lpld::engine
