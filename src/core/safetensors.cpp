#include "core/safetensors.h"

#include <xxhash.h>

#include <cstring>
#include <limits>

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
  XXH64_state_t* state = XXH64_createState();
  XXH64_reset(state, 0);
  for (const auto& t : ordered) XXH64_update(state, t.data_ptr(), t.numel() * t.element_size());
  header["__metadata__"][kDataChecksumKey] = fmt::format("{:016x}", XXH64_digest(state));
  XXH64_freeState(state);
  header["__metadata__"].erase(kHeaderChecksumKey);  // a loaded file's, re-saved
  const std::string unsigned_header = header.dump();
  header["__metadata__"][kHeaderChecksumKey] =
      fmt::format("{:016x}", xxh64(unsigned_header.data(), unsigned_header.size()));
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');
  AtomicFile out(path);
  const uint64_t n = h.size();
  out.write(&n, 8);  // little-endian hosts only (x86-64, aarch64)
  out.write(h.data(), h.size());
  for (const auto& t : ordered) out.write(t.data_ptr(), t.numel() * t.element_size());
  out.commit();
}

namespace {

struct Entry {
  std::string name;
  torch::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

// One tensor entry of the header, checked on its own: known dtype, shape, byte size.
Entry parse_entry(const std::string& path, const std::string& name, const json& e) {
  check_file(e.is_object() && e.contains("dtype") && e.contains("shape") &&
                 e.contains("data_offsets") && e["dtype"].is_string() && e["shape"].is_array() &&
                 e["data_offsets"].is_array() && e["data_offsets"].size() == 2,
             path, "tensor '" + name + "' has a malformed entry");
  Entry x{name, torch::kFloat32, {}, 0, 0};
  const std::string dt = e["dtype"].get<std::string>();
  bool known = false;
  for (const auto& d : kDtypes)
    if (dt == d.name) x.type = d.type, known = true;
  check_file(known, path, "tensor '" + name + "' has unsupported dtype " + dt);
  uint64_t bytes = torch::elementSize(x.type);
  for (const auto& d : e["shape"]) {
    check_file(d.is_number_integer() && d.get<int64_t>() >= 0, path,
               "tensor '" + name + "' has a negative or non-integer dimension");
    const auto n = d.get<uint64_t>();
    check_file(n == 0 || bytes <= std::numeric_limits<uint64_t>::max() / n, path,
               "tensor '" + name + "' is too large (its size overflows)");
    bytes *= n;
    x.shape.push_back(static_cast<int64_t>(n));
  }
  for (const auto& o : e["data_offsets"])
    check_file(o.is_number_unsigned(), path, "tensor '" + name + "' has a bad byte range");
  x.begin = e["data_offsets"][0].get<uint64_t>();
  x.end = e["data_offsets"][1].get<uint64_t>();
  check_file(x.begin <= x.end && x.end - x.begin == bytes, path,
             "tensor '" + name + "' byte size does not match its dtype and shape");
  return x;
}

}  // namespace

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
  bool header_verified = false;
  if (auto meta = header.find("__metadata__"); meta != header.end() && meta->is_object()) {
    if (auto c = meta->find(kHeaderChecksumKey); c != meta->end()) {
      check_file(c->is_string(), path, "header checksum is not a string");
      const std::string recorded = c->get<std::string>();
      json unsigned_header = header;
      unsigned_header["__metadata__"].erase(kHeaderChecksumKey);
      const std::string text = unsigned_header.dump();
      check_file(fmt::format("{:016x}", xxh64(text.data(), text.size())) == recorded, path,
                 "header checksum mismatch: the file's names, shapes or metadata are damaged");
      header_verified = true;
    }
  }
  const uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;
  TensorFile file;
  file.header_verified = header_verified;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      check_file(it->is_object(), path, "__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        check_file(m->is_string(), path, "metadata value '" + m.key() + "' is not a string");
        file.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, it.key(), *it));
  }
  // The byte ranges must tile the data section: no overlap (two tensors sharing bytes), no
  // gap, nothing after the last tensor.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t pos = 0;
  for (const auto& x : entries) {
    check_file(x.begin == pos, path,
               "tensor '" + x.name + "' " + (x.begin < pos ? "overlaps another" : "leaves a gap") +
                   " in the data section");
    pos = x.end;
  }
  check_file(pos == data_size, path,
             pos < data_size ? std::to_string(data_size - pos) + " trailing bytes after the data"
                             : "the data section is truncated");
  if (auto c = file.metadata.find(kDataChecksumKey); c != file.metadata.end()) {
    check_file(fmt::format("{:016x}", xxh64(data, data_size)) == c->second, path,
               "data checksum mismatch: the file is damaged");
    file.checksum_verified = true;
  }
  for (const auto& x : entries) {
    auto t = torch::empty(x.shape, torch::TensorOptions().dtype(x.type));
    std::memcpy(t.data_ptr(), data + x.begin, x.end - x.begin);
    file.tensors[x.name] = t;
  }
  return file;
}

}  // namespace lpld
