#include "core/torch_file.h"

#include <caffe2/serialize/inline_container.h>
#include <zip.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "core/error.h"

namespace lpld {
namespace {

// A value of the pickle machine. Only what torch.save files need is modelled; everything
// else is an Opaque value that can be stored, passed and ignored.
struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Value {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor, Opaque };
  Kind kind = None;
  int64_t i = 0;
  double f = 0;
  std::string s;                                       // Str, and the "module.name" of a Global
  std::vector<ValuePtr> items;                         // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // Dict, in insertion order
  torch::Tensor tensor;                                // Storage (1-D, its dtype), Tensor
};
ValuePtr make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

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

class Unpickler {
 public:
  Unpickler(const std::string& pickle, caffe2::serialize::PyTorchStreamReader& zip)
      : p_(pickle), zip_(zip) {}
  // A pickle can make a container hold itself (a cycle of shared_ptrs, never freed) or nest
  // containers a million deep (freed recursively, past the stack): emptying every container
  // here, while all are still held, frees them all without either (fuzzing found the leak).
  ~Unpickler() {
    for (auto& c : containers_) c->items.clear(), c->entries.clear();
  }
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;
  ValuePtr run();

 private:
  uint8_t byte() { return static_cast<uint8_t>(need(1)[0]); }
  const char* need(size_t n) {
    if (pos_ + n > p_.size()) throw std::runtime_error("pickle ends early");
    const char* at = p_.data() + pos_;
    pos_ += n;
    return at;
  }
  template <typename T>
  T little() {  // little-endian integer
    T v;
    std::memcpy(&v, need(sizeof(T)), sizeof(T));
    return v;
  }
  std::string line() {
    const size_t end = p_.find('\n', pos_);
    if (end == std::string::npos) throw std::runtime_error("pickle ends early");
    std::string s = p_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  ValuePtr pop() {
    if (stack_.empty()) throw std::runtime_error("pickle stack underflow");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) throw std::runtime_error("pickle MARK missing");
    const size_t m = marks_.back();
    marks_.pop_back();
    if (m > stack_.size()) throw std::runtime_error("pickle MARK beyond the stack");
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  ValuePtr& top() {
    if (stack_.empty()) throw std::runtime_error("pickle stack underflow");
    return stack_.back();
  }
  void memo_put(uint64_t k) { memo_[k] = top(); }
  ValuePtr memo_get(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) throw std::runtime_error("pickle memo key missing");
    return it->second;
  }
  ValuePtr str(std::string s) {
    auto v = make(Value::Str);
    v->s = std::move(s);
    return v;
  }
  ValuePtr integer(int64_t i) {
    auto v = make(Value::Int);
    v->i = i;
    return v;
  }
  ValuePtr container(Value::Kind k) {  // a Tuple, List or Dict, emptied by the destructor
    containers_.push_back(make(k));
    return containers_.back();
  }
  ValuePtr tuple(std::vector<ValuePtr> items) {
    auto v = container(Value::Tuple);
    v->items = std::move(items);
    return v;
  }
  void set_items(const ValuePtr& dict, const std::vector<ValuePtr>& kv) {
    if (kv.size() % 2) throw std::runtime_error("pickle SETITEMS with an odd count");
    if (dict->kind != Value::Dict) return;  // items of an opaque mapping: ignored
    for (size_t i = 0; i < kv.size(); i += 2) dict->entries.emplace_back(kv[i], kv[i + 1]);
  }
  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args);
  ValuePtr persistent_load(const ValuePtr& pid);
  bool step();                 // one opcode; false at STOP
  bool scalar_op(uint8_t op);  // each: false when `op` is not one of its opcodes
  bool container_op(uint8_t op);
  bool memo_op(uint8_t op);
  bool object_op(uint8_t op);

  const std::string& p_;
  caffe2::serialize::PyTorchStreamReader& zip_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
  std::map<std::string, torch::Tensor> storages_;
  std::vector<ValuePtr> containers_;
};

int64_t as_int(const ValuePtr& v) {
  if (!v || v->kind != Value::Int) throw std::runtime_error("expected an integer");
  return v->i;
}
std::vector<int64_t> as_ints(const ValuePtr& v) {
  if (!v || v->kind != Value::Tuple) throw std::runtime_error("expected a tuple of integers");
  std::vector<int64_t> out;
  for (const auto& x : v->items) out.push_back(as_int(x));
  return out;
}

ValuePtr Unpickler::persistent_load(const ValuePtr& pid) {
  // ('storage', <storage type>, key, location, numel)
  if (pid->kind != Value::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage" ||
      pid->items[1]->kind != Value::Global || pid->items[2]->kind != Value::Str)
    throw std::runtime_error("unsupported persistent id (not a tensor storage)");
  const auto dtype = storage_dtype(pid->items[1]->s);
  const std::string key = pid->items[2]->s;
  const int64_t numel = as_int(pid->items[4]);
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

ValuePtr Unpickler::reduce(const ValuePtr& callable, const ValuePtr& args) {
  const std::string name = callable->kind == Value::Global ? callable->s : "";
  if (name == "collections.OrderedDict" || name == "builtins.dict") return container(Value::Dict);
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
    // (storage, storage_offset, size, stride, ...)
    if (args->kind != Value::Tuple || args->items.size() < 4 ||
        args->items[0]->kind != Value::Storage)
      throw std::runtime_error("malformed tensor in " + name);
    const auto& storage = args->items[0]->tensor;
    const int64_t offset = as_int(args->items[1]);
    const auto size = as_ints(args->items[2]), stride = as_ints(args->items[3]);
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

// Constants: protocol and frame markers, None, bools, numbers, strings, globals.
bool Unpickler::scalar_op(uint8_t op) {
  switch (op) {
    case 0x80:
      byte();
      break;  // PROTO
    case 0x95:
      little<uint64_t>();
      break;  // FRAME
    case 'N':
      stack_.push_back(make(Value::None));
      break;
    case 0x88:
    case 0x89: {  // NEWTRUE, NEWFALSE
      auto v = make(Value::Bool);
      v->i = op == 0x88;
      stack_.push_back(v);
      break;
    }
    case 'J':
      stack_.push_back(integer(little<int32_t>()));
      break;  // BININT
    case 'K':
      stack_.push_back(integer(byte()));
      break;  // BININT1
    case 'M':
      stack_.push_back(integer(little<uint16_t>()));
      break;      // BININT2
    case 0x8a: {  // LONG1
      const uint8_t n = byte();
      if (n > 8) throw std::runtime_error("integer too large");
      const char* b = need(n);
      int64_t v = 0;
      for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(b[k]);
      if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80)) v -= int64_t{1} << (8 * n);
      stack_.push_back(integer(v));
      break;
    }
    case 'G': {  // BINFLOAT, big-endian
      const char* b = need(8);
      uint64_t bits = 0;
      for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(b[k]);
      auto v = make(Value::Float);
      std::memcpy(&v->f, &bits, 8);
      stack_.push_back(v);
      break;
    }
    case 'X': {
      const uint32_t n = little<uint32_t>();
      stack_.push_back(str(std::string(need(n), n)));
      break;
    }
    case 0x8c: {
      const uint8_t n = byte();
      stack_.push_back(str(std::string(need(n), n)));
      break;
    }
    case 0x8d: {
      const uint64_t n = little<uint64_t>();
      stack_.push_back(str(std::string(need(n), n)));
      break;
    }
    case 'B': {
      const uint32_t n = little<uint32_t>();
      stack_.push_back(str(std::string(need(n), n)));
      break;
    }
    case 'C': {
      const uint8_t n = byte();
      stack_.push_back(str(std::string(need(n), n)));
      break;
    }
    case 'U': {
      const uint8_t n = byte();
      stack_.push_back(str(std::string(need(n), n)));
      break;
    }
    case 'T': {
      const uint32_t n = little<uint32_t>();
      stack_.push_back(str(std::string(need(n), n)));
      break;
    }
    case 'c': {  // GLOBAL module\nname\n
      auto v = make(Value::Global);
      const std::string module = line();
      v->s = module + "." + line();
      stack_.push_back(v);
      break;
    }
    case 0x93: {  // STACK_GLOBAL
      auto name = pop(), module = pop();
      auto v = make(Value::Global);
      v->s = module->s + "." + name->s;
      stack_.push_back(v);
      break;
    }
    default:
      return false;
  }
  return true;
}

// Tuples, lists, dicts, sets and the MARK they are built from.
bool Unpickler::container_op(uint8_t op) {
  switch (op) {
    case '(':
      marks_.push_back(stack_.size());
      break;  // MARK
    case ')':
      stack_.push_back(tuple({}));
      break;  // EMPTY_TUPLE
    case 0x85: {
      auto a = pop();
      stack_.push_back(tuple({a}));
      break;
    }
    case 0x86: {
      auto b = pop(), a = pop();
      stack_.push_back(tuple({a, b}));
      break;
    }
    case 0x87: {
      auto c = pop(), b = pop(), a = pop();
      stack_.push_back(tuple({a, b, c}));
      break;
    }
    case 't':
      stack_.push_back(tuple(pop_mark()));
      break;  // TUPLE
    case ']':
      stack_.push_back(container(Value::List));
      break;  // EMPTY_LIST
    case 'l': {
      auto v = container(Value::List);
      v->items = pop_mark();
      stack_.push_back(v);
      break;
    }
    case '}':
      stack_.push_back(container(Value::Dict));
      break;  // EMPTY_DICT
    case 'd': {
      auto v = container(Value::Dict);
      set_items(v, pop_mark());
      stack_.push_back(v);
      break;
    }
    case 0x8f:
      stack_.push_back(make(Value::Opaque));
      break;  // EMPTY_SET
    case 0x90:
      pop_mark();
      break;  // ADDITEMS
    case 0x91:
      pop_mark();
      stack_.push_back(make(Value::Opaque));
      break;  // FROZENSET
    case 'a': {
      auto v = pop();
      if (top()->kind == Value::List) top()->items.push_back(v);
      break;
    }
    case 'e': {
      auto items = pop_mark();
      if (top()->kind == Value::List)
        for (auto& v : items) top()->items.push_back(v);
      break;
    }
    case 's': {
      auto v = pop(), k = pop();
      set_items(top(), {k, v});
      break;
    }
    case 'u': {
      auto kv = pop_mark();
      set_items(top(), kv);
      break;
    }
    default:
      return false;
  }
  return true;
}

// The memo and plain stack manipulation.
bool Unpickler::memo_op(uint8_t op) {
  switch (op) {
    case 'q':
      memo_put(byte());
      break;  // BINPUT
    case 'r':
      memo_put(little<uint32_t>());
      break;  // LONG_BINPUT
    case 0x94:
      memo_put(memo_.size());
      break;  // MEMOIZE
    case 'h':
      stack_.push_back(memo_get(byte()));
      break;  // BINGET
    case 'j':
      stack_.push_back(memo_get(little<uint32_t>()));
      break;  // LONG_BINGET
    case '0':
      pop();
      break;  // POP
    case '1':
      pop_mark();
      break;  // POP_MARK
    case '2':
      stack_.push_back(top());
      break;  // DUP
    default:
      return false;
  }
  return true;
}

// Objects: REDUCE / NEWOBJ build them, BUILD sets their state, BINPERSID loads storages.
bool Unpickler::object_op(uint8_t op) {
  switch (op) {
    case 'R': {
      auto args = pop(), f = pop();
      stack_.push_back(reduce(f, args));
      break;
    }
    case 0x81: {
      pop();
      pop();
      stack_.push_back(make(Value::Opaque));
      break;
    }  // NEWOBJ
    case 0x92: {
      pop();
      pop();
      pop();
      stack_.push_back(make(Value::Opaque));
      break;
    }  // NEWOBJ_EX
    case 'b':
      pop();
      break;  // BUILD: object state (e.g. a state_dict's _metadata) is not needed
    case 'Q': {
      auto pid = pop();
      stack_.push_back(persistent_load(pid));
      break;
    }  // BINPERSID
    default:
      return false;
  }
  return true;
}

bool Unpickler::step() {
  const uint8_t op = byte();
  if (op == '.') return false;  // STOP
  if (!scalar_op(op) && !container_op(op) && !memo_op(op) && !object_op(op))
    throw std::runtime_error(
        fmt::format("unsupported pickle opcode 0x{:02x} at byte {}", op, pos_ - 1));
  return true;
}

ValuePtr Unpickler::run() {
  while (step()) {
  }
  if (stack_.size() != 1) throw std::runtime_error("pickle did not leave one value");
  return stack_.back();
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
    Unpickler u(pickle, zip);
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
