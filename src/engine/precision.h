// Mixed precision and memory layout, the same in every stage: `--amp off|bf16|fp16` runs the
// forward passes under libtorch's autocast (bf16 also on the CPU; fp16 with a gradient scaler
// wherever gradients are taken), `--channels-last` keeps models and inputs in NHWC. Losses are
// computed in float32 outside autocast; both choices are recorded with every result.
#pragma once
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "core/choice.h"

namespace lpld::engine {

enum class Amp { off, bf16, fp16 };
const std::vector<Choice<Amp>>& choices(Amp);

// The settings a stage runs under: its config's `amp` and `channels_last`.
struct Precision {
  Amp amp = Amp::off;
  bool channels_last = false;
};

// Autocast on `device` while alive (nothing for Amp::off); nests, and restores what was set.
class AutocastGuard {
 public:
  AutocastGuard(const torch::Device& device, Amp amp);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  torch::DeviceType type_;
  bool active_ = false, was_enabled_ = false;
  torch::ScalarType was_dtype_ = torch::kFloat;
};

// Puts a model's 4-d parameters and buffers into channels-last (NHWC) memory, in place.
void to_channels_last(torch::nn::Module& model);
// An input batch in the layout `p` asks for (unchanged unless channels_last and 4-d).
torch::Tensor in_layout(const torch::Tensor& x, const Precision& p);

// fp16's dynamic loss scaling (as torch.amp.GradScaler, defaults included): the loss is
// multiplied by `scale`, gradients are unscaled before the step, a step whose gradients hold
// inf/NaN is skipped and the scale halved; after 2000 clean steps it doubles. Inactive (every
// call a pass-through) unless amp is fp16. The scale lives on the device; whether to step is
// read once per step (as PyTorch's scaler does: the one host sync of an fp16 step).
class GradScaler {
 public:
  GradScaler(Amp amp, const torch::Device& device);
  bool active() const { return active_; }
  torch::Tensor scale(const torch::Tensor& loss) const;
  // Unscales the gradients of `optimizer`'s parameters, steps unless one is not finite, and
  // updates the scale. Returns whether the step was taken.
  bool step(torch::optim::Optimizer& optimizer);
  double current_scale() const;

 private:
  bool active_;
  torch::Tensor scale_, growth_tracker_, found_inf_;
};

}  // namespace lpld::engine
