#include "engine/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <stdexcept>

namespace lpld::engine {

const std::vector<Choice<Amp>>& choices(Amp) {
  static const std::vector<Choice<Amp>> table = {
      {Amp::off, "off"}, {Amp::bf16, "bf16"}, {Amp::fp16, "fp16"}};
  return table;
}

namespace {
// libtorch 2.x takes the device type; 1.13 had one call per device type.
bool autocast_enabled(torch::DeviceType t) {
#if TORCH_VERSION_MAJOR >= 2
  return at::autocast::is_autocast_enabled(t);
#else
  return t == torch::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
torch::ScalarType autocast_dtype(torch::DeviceType t) {
#if TORCH_VERSION_MAJOR >= 2
  return at::autocast::get_autocast_dtype(t);
#else
  return t == torch::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                           : at::autocast::get_autocast_cpu_dtype();
#endif
}
void set_autocast(torch::DeviceType t, bool enabled, torch::ScalarType dtype) {
#if TORCH_VERSION_MAJOR >= 2
  at::autocast::set_autocast_dtype(t, dtype);
  at::autocast::set_autocast_enabled(t, enabled);
#else
  if (t == torch::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}
}  // namespace

AutocastGuard::AutocastGuard(const torch::Device& device, Amp amp) : type_(device.type()) {
  if (amp == Amp::off) return;
  if (amp == Amp::fp16 && device.is_cpu() && TORCH_VERSION_MAJOR < 2)
    throw std::invalid_argument("--amp fp16: this libtorch (1.x) has no fp16 autocast on the CPU");
  active_ = true;
  was_enabled_ = autocast_enabled(type_);
  was_dtype_ = autocast_dtype(type_);
  at::autocast::increment_nesting();
  set_autocast(type_, true, amp == Amp::bf16 ? torch::kBFloat16 : torch::kHalf);
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // The outermost guard drops autocast's cache of casted weights, as torch.autocast does.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(type_, was_enabled_, was_dtype_);
}

void to_channels_last(torch::nn::Module& model) {
  torch::NoGradGuard ng;
  for (auto& p : model.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  for (auto& b : model.buffers())
    if (b.dim() == 4) b.set_data(b.contiguous(torch::MemoryFormat::ChannelsLast));
}

torch::Tensor in_layout(const torch::Tensor& x, const Precision& p) {
  return p.channels_last && x.dim() == 4 ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
}

GradScaler::GradScaler(Amp amp, const torch::Device& device) : active_(amp == Amp::fp16) {
  if (!active_) return;
  const auto f = torch::TensorOptions().device(device).dtype(torch::kFloat);
  scale_ = torch::full({1}, 65536.0, f);  // torch.amp.GradScaler's init_scale
  growth_tracker_ = torch::zeros({1}, f.dtype(torch::kInt));
  found_inf_ = torch::zeros({1}, f);
}

torch::Tensor GradScaler::scale(const torch::Tensor& loss) const {
  return active_ ? loss * scale_.to(loss.scalar_type()) : loss;
}

bool GradScaler::step(torch::optim::Optimizer& optimizer) {
  if (!active_) {
    optimizer.step();
    return true;
  }
  std::vector<torch::Tensor> grads;
  for (const auto& group : optimizer.param_groups())
    for (const auto& p : group.params())
      if (p.grad().defined()) grads.push_back(p.grad());
  found_inf_.zero_();
  const auto inv_scale = scale_.to(torch::kDouble).reciprocal().to(torch::kFloat);
  if (!grads.empty()) at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf_, inv_scale);
  const bool finite = found_inf_.item<float>() == 0.0f;  // the step's one host sync (above)
  if (finite) optimizer.step();
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, 2.0, 0.5, 2000);
  return finite;
}

double GradScaler::current_scale() const { return active_ ? scale_.item<double>() : 1.0; }

}  // namespace lpld::engine
