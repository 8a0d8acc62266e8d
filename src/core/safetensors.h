// Tensor files in the safetensors format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length, a JSON header mapping each tensor name to its
// dtype, shape and byte range, and an optional "__metadata__" map of strings; then the raw
// little-endian tensor bytes. Every tensor file lpld writes uses it, so Python reads them
// with `safetensors.numpy.load_file` (or ten lines of numpy, docs/formats.md).
// Hand-written: Debian ships no C++ safetensors library; the format is a page long.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

namespace lpld {

struct TensorFile {
  std::map<std::string, torch::Tensor> tensors;  // CPU, contiguous
  std::map<std::string, std::string> metadata;   // "__metadata__"
};

// Writes atomically; tensors are moved to CPU and made contiguous.
void save_safetensors(const std::string& path, const TensorFile& file);
// Reads and validates (header bounds, dtypes, sizes); throws runtime_error naming `path`.
TensorFile load_safetensors(const std::string& path);

}  // namespace lpld
