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
  bool checksum_verified = false;                // set by load_safetensors: the data's
  bool header_verified = false;                  // and the header's (names, shapes, metadata)
};

// The metadata key of the data section's checksum (xxh64, 16 hex digits) that lpld writes.
constexpr const char* kDataChecksumKey = "lpld_data_xxh64";
// And of the header's: xxh64 of the header JSON as written without this key (compact, keys
// sorted), so a damaged class name or recorded setting is caught like damaged weights.
constexpr const char* kHeaderChecksumKey = "lpld_header_xxh64";

// Writes atomically; tensors are moved to CPU and made contiguous; the metadata gets the
// data section's checksum.
void save_safetensors(const std::string& path, const TensorFile& file);
// Reads and validates strictly, throwing runtime_error naming `path`: header bounds and JSON,
// dtypes, shapes (non-negative, element counts without overflow), byte ranges that tile the
// data section exactly (contiguous, no overlap, no gap, no trailing bytes), and the data and
// header checksums when the file has them (files lpld did not write may lack them:
// checksum_verified and header_verified tell).
TensorFile load_safetensors(const std::string& path);

}  // namespace lpld
