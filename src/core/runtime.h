// Device and thread settings shared by every stage.
#pragma once
#include <torch/torch.h>

#include <string>

namespace lpld {

// Parses "cpu", "cuda" or "cuda:N"; throws invalid_argument naming --device when the
// device is unknown or not available in this build.
torch::Device parse_device(const std::string& spec);

// Sets libtorch's intra-op threads: `threads` <= 0 means all cores (Debian's libtorch
// defaults to one). Returns the number in use.
int set_threads(int threads);

}  // namespace lpld
