#include "core/safetensors.h"

#include <cstring>

#include "core/error.h"
#include "core/io.h"

namespace lpld {
namespace {

struct DtypeName {
  torch::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {
    {torch::kFloat32, "F32"}, {torch::kFloat16, "F16"}, {torch::kBFloat16, "BF16"},
    {torch::kFloat64, "F64"}, {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
    {torch::kInt16, "I16"},   {torch::kInt8, "I8"},     {torch::kUInt8, "U8"},
    {torch::kBool, "BOOL"},
};

const char* dtype_name(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  throw std::invalid_argument(std::string("safetensors: unsupported dtype ") + c10::toString(t));
}

}  // namespace

void save_safetensors(const std::string& path, const TensorFile& file) {
  json header = json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::vector<torch::Tensor> ordered;
  uint64_t offset = 0;
  for (const auto& [name, t] : file.tensors) {
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", dtype_name(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    ordered.push_back(c);
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');
  AtomicFile out(path);
  const uint64_t n = h.size();
  out.write(&n, 8);  // little-endian hosts only (x86-64, aarch64)
  out.write(h.data(), h.size());
  for (const auto& t : ordered) out.write(t.data_ptr(), t.numel() * t.element_size());
  out.commit();
}

TensorFile load_safetensors(const std::string& path) {
  const std::string bytes = read_file(path);
  check_file(bytes.size() >= 8, path, "too short to be a safetensors file");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  check_file(n <= bytes.size() - 8, path,
             "header length " + std::to_string(n) + " exceeds file size (truncated?)");
  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<int64_t>(n));
  } catch (const json::exception& e) {
    fail_file(path, std::string("safetensors header is not valid JSON: ") + e.what());
  }
  check_file(header.is_object(), path, "safetensors header is not an object");
  const uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;
  TensorFile file;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      for (auto m = it->begin(); m != it->end(); ++m) {
        check_file(m->is_string(), path, "metadata value '" + m.key() + "' is not a string");
        file.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const json& e = *it;
    check_file(
        e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
        path, "tensor '" + it.key() + "' has a malformed entry");
    const std::string dt = e["dtype"].get<std::string>();
    torch::ScalarType type = torch::kFloat32;
    bool known = false;
    for (const auto& d : kDtypes)
      if (dt == d.name) type = d.type, known = true;
    check_file(known, path, "tensor '" + it.key() + "' has unsupported dtype " + dt);
    const auto shape = e["shape"].get<std::vector<int64_t>>();
    const auto off = e["data_offsets"].get<std::vector<uint64_t>>();
    check_file(off.size() == 2 && off[0] <= off[1] && off[1] <= data_size, path,
               "tensor '" + it.key() + "' lies outside the file (truncated?)");
    auto t = torch::empty(shape, torch::TensorOptions().dtype(type));
    const uint64_t expect = static_cast<uint64_t>(t.numel()) * t.element_size();
    check_file(off[1] - off[0] == expect, path,
               "tensor '" + it.key() + "' byte size does not match its shape");
    std::memcpy(t.data_ptr(), data + off[0], expect);
    file.tensors[it.key()] = t;
  }
  return file;
}

}  // namespace lpld
