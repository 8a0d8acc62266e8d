#include "core/torch_file.h"

#include <caffe2/serialize/inline_container.h>
#include <zip.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/pickle.h"

namespace lpld {
namespace {
using pickle::make;
using pickle::Value;
using pickle::ValuePtr;

torch::ScalarType storage_dtype(const std::string& global) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"torch.FloatStorage", torch::kFloat32}, {"torch.DoubleStorage", torch::kFloat64},
      {"torch.HalfStorage", torch::kFloat16},  {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},    {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},   {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},    {"torch.BoolStorage", torch::kBool},
      {"torch.UntypedStorage", torch::kUInt8}};
  auto it = types.find(global);
  if (it == types.end()) throw std::runtime_error("unsupported storage type " + global);
  return it->second;
}

// torch.save's objects on the pickle machine: tensor storages (persistent ids naming zip
// records) and the tensors and dicts REDUCE rebuilds.
class TorchUnpickler : public pickle::Unpickler {
 public:
  TorchUnpickler(const std::string& pickle, caffe2::serialize::PyTorchStreamReader& zip)
      : Unpickler(pickle), zip_(zip) {}

 protected:
  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args) override;
  ValuePtr persistent_load(const ValuePtr& pid) override;

 private:
  caffe2::serialize::PyTorchStreamReader& zip_;
  std::map<std::string, torch::Tensor> storages_;
};

ValuePtr TorchUnpickler::persistent_load(const ValuePtr& pid) {
  // ('storage', <storage type>, key, location, numel)
  if (pid->kind != Value::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage" ||
      pid->items[1]->kind != Value::Global || pid->items[2]->kind != Value::Str)
    throw std::runtime_error("unsupported persistent id (not a tensor storage)");
  const auto dtype = storage_dtype(pid->items[1]->s);
  const std::string key = pid->items[2]->s;
  const int64_t numel = pickle::as_int(pid->items[4]);
  auto it = storages_.find(key);
  if (it == storages_.end()) {
    const std::string record = "data/" + key;
    if (!zip_.hasRecord(record)) throw std::runtime_error("missing storage record " + record);
    auto [ptr, size] = zip_.getRecord(record);
    const size_t item = torch::elementSize(dtype);
    if (numel < 0 || static_cast<size_t>(numel) > size / item)  // no overflow in numel * item
      throw std::runtime_error("storage record " + record + " is too short for " +
                               std::to_string(numel) + " elements");
    const size_t bytes = static_cast<size_t>(numel) * item;
    auto t = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    if (bytes > 0) std::memcpy(t.data_ptr(), ptr.get(), bytes);  // an empty one has no data
    it = storages_.emplace(key, t).first;
  }
  auto v = make(Value::Storage);
  v->tensor = it->second;
  return v;
}

// A tensor is a view (size, stride, offset) of its storage, and the view is copied out: every
// element it touches must lie in the storage, and it may not hold more elements than the
// storage (an expanded view, stride 0, would copy out far more than the file holds; model
// checkpoints have none). Checked arithmetic: the numbers come from the file (found by
// fuzzing: a stride shorter than the size was read past its end, bench/fuzz_findings.md).
void check_view(const std::vector<int64_t>& size, const std::vector<int64_t>& stride,
                int64_t offset, int64_t storage_numel) {
  if (size.size() != stride.size())
    throw std::runtime_error("tensor size has " + std::to_string(size.size()) +
                             " dimensions but its stride " + std::to_string(stride.size()));
  int64_t last = offset, count = 1;  // the highest element the view touches; its elements
  bool overflow = false;
  for (size_t d = 0; d < size.size(); ++d) {
    if (size[d] < 0 || stride[d] < 0) throw std::runtime_error("negative size or stride");
    int64_t reach = 0;
    overflow = overflow || __builtin_mul_overflow(count, size[d], &count) ||
               (size[d] > 0 && (__builtin_mul_overflow(size[d] - 1, stride[d], &reach) ||
                                __builtin_add_overflow(last, reach, &last)));
  }
  if (overflow || offset < 0 || count > storage_numel || (count > 0 && last >= storage_numel))
    throw std::runtime_error("tensor view exceeds its storage");
}

ValuePtr TorchUnpickler::reduce(const ValuePtr& callable, const ValuePtr& args) {
  const std::string name = callable->kind == Value::Global ? callable->s : "";
  if (name == "collections.OrderedDict" || name == "builtins.dict") return container(Value::Dict);
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
    // (storage, storage_offset, size, stride, ...)
    if (args->kind != Value::Tuple || args->items.size() < 4 ||
        args->items[0]->kind != Value::Storage)
      throw std::runtime_error("malformed tensor in " + name);
    const auto& storage = args->items[0]->tensor;
    const int64_t offset = pickle::as_int(args->items[1]);
    const auto size = pickle::as_ints(args->items[2]), stride = pickle::as_ints(args->items[3]);
    check_view(size, stride, offset, storage.numel());
    auto v = make(Value::Tensor);
    v->tensor = storage.as_strided(size, stride, offset).clone();
    return v;
  }
  if (name == "torch._utils._rebuild_parameter" ||
      name == "torch._utils._rebuild_parameter_with_state") {
    if (args->kind == Value::Tuple && !args->items.empty() && args->items[0]->kind == Value::Tensor)
      return args->items[0];
  }
  return make(Value::Opaque);
}

// A checkpoint's tensors sit a few dicts deep ({"state_dict": {"layer.weight": ...}}); a dict
// nested deeper is not one, and may be a dict that holds itself.
constexpr int kMaxDictDepth = 32;

void flatten(const ValuePtr& v, const std::string& prefix,
             std::map<std::string, torch::Tensor>& out, int depth = 0) {
  if (depth > kMaxDictDepth)
    throw std::runtime_error(
        fmt::format("dicts nested more than {} deep at '{}' (a dict that holds itself?)",
                    kMaxDictDepth, prefix.substr(0, 200)));
  if (v->kind == Value::Tensor) {
    out[prefix] = v->tensor;
  } else if (v->kind == Value::Dict) {
    for (const auto& [k, x] : v->entries) {
      if (k->kind != Value::Str && k->kind != Value::Int) continue;
      const std::string key = k->kind == Value::Str ? k->s : std::to_string(k->i);
      flatten(x, prefix.empty() ? key : prefix + "." + key, out, depth + 1);
    }
  }
}

// libtorch's zip reader allocates the size a record declares before it reads a byte of it:
// 2.4 KB that declared a 4 GiB record made it allocate 4 GiB (bench/fuzz_findings.md). So
// libzip reads the archive's directory first, checked against the entries' own headers, and
// each entry must fit the file: a stored one (torch.save stores) in the file's bytes, a
// compressed one in deflate's largest ratio (1032:1) times its compressed bytes.
void check_zip_entries(const std::string& path) {
  int code = 0;
  std::unique_ptr<zip_t, decltype(&zip_discard)> archive(
      zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code), zip_discard);
  if (!archive) {
    // (libzip says "No such file" of an existing file whose directory it cannot find)
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    const std::string what =
        code == ZIP_ER_NOENT ? "no readable zip directory" : zip_error_strerror(&error);
    zip_error_fini(&error);
    fail_file(path, "not a valid zip archive: " + what);
  }
  const uint64_t file_bytes = std::filesystem::file_size(path);
  const zip_int64_t entries = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < entries; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    check_file(zip_stat_index(archive.get(), static_cast<zip_uint64_t>(i), 0, &st) == 0, path,
               fmt::format("zip entry {} cannot be read", i));
    const bool stored = st.comp_method == ZIP_CM_STORE;
    const bool fits =
        st.comp_size <= file_bytes && st.size <= (stored ? file_bytes : st.comp_size * 1032);
    check_file(
        fits, path,
        fmt::format("zip entry '{}' declares {} bytes, more than the file's {} bytes can hold",
                    st.name ? st.name : "?", st.size, file_bytes));
  }
}

}  // namespace

std::map<std::string, torch::Tensor> load_torch_file(const std::string& path) {
  {
    std::ifstream f(path, std::ios::binary);
    check_file(f.good(), path, "cannot open");
    char magic[2] = {0, 0};
    f.read(magic, 2);
    check_file(magic[0] == 'P' && magic[1] == 'K', path,
               "not a zip-format torch.save file (the legacy pre-1.6 format? re-save it with "
               "torch >= 1.6: torch.save(torch.load(f), f2))");
  }
  check_zip_entries(path);
  try {
    caffe2::serialize::PyTorchStreamReader zip(path);
    check_file(zip.hasRecord("data.pkl"), path,
               "zip archive without data.pkl (a TorchScript archive? save a state_dict instead)");
    auto [ptr, size] = zip.getRecord("data.pkl");
    const std::string pickle(static_cast<const char*>(ptr.get()), size);
    TorchUnpickler u(pickle, zip);
    std::map<std::string, torch::Tensor> out;
    flatten(u.run(), "", out);
    return out;
  } catch (const c10::Error& e) {
    fail_file(path, std::string("cannot read the zip archive: ") + e.what_without_backtrace());
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    if (what.rfind(path + ":", 0) == 0) throw;
    fail_file(path, "cannot read torch.save data: " + what);
  }
}

}  // namespace lpld
