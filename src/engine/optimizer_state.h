// Optimizer state (Adam / AdamW moments, SGD momentum buffers) to and from named tensors, so a
// training checkpoint is one safetensors file like every other tensor file lpld writes.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

namespace lpld::engine {

// "opt.<i>.<field>" for parameter i of the optimizer's first group, plus "opt.<i>.step".
std::map<std::string, torch::Tensor> optimizer_tensors(torch::optim::Optimizer& optimizer);
// Restores what optimizer_tensors wrote; throws runtime_error naming `path` on a mismatch.
void load_optimizer_tensors(torch::optim::Optimizer& optimizer,
                            const std::map<std::string, torch::Tensor>& tensors,
                            const std::string& path);

}  // namespace lpld::engine
