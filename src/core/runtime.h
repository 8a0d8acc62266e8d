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

// Keeps tensor-sized allocations on the heap. glibc serves blocks above 128 KB (up to
// 32 MB, adaptively) with fresh mmap()s and unmaps them at free(): every activation
// tensor of a step then costs page faults (measured: 17 of 27 s of a student run spent
// in the kernel). Call once at program start.
void tune_allocator();

}  // namespace lpld
