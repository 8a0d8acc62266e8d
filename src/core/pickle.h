// A pickle machine (Python's pickle protocol 2-5, the opcodes torch.save emits) that builds
// values and executes nothing: a GLOBAL only names what a REDUCE builds, and what that is the
// subclass decides (torch_file.cpp: tensors and dicts); anything else is an Opaque value that
// can be stored, passed and ignored. Written here because libtorch's unpickler
// (torch::pickle_load) rejects the OrderedDict-with-attributes that every state_dict() is,
// and no Debian library reads pickles from C++ (core/torch_file.h).
#pragma once
#include <torch/torch.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lpld::pickle {

// A value of the pickle machine. Only what torch.save files need is modelled.
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
ValuePtr make(Value::Kind k);

int64_t as_int(const ValuePtr& v);                // throws runtime_error unless an Int
std::vector<int64_t> as_ints(const ValuePtr& v);  // ... unless a Tuple of Ints

class Unpickler {
 public:
  explicit Unpickler(const std::string& pickle) : p_(pickle) {}
  // A pickle can make a container hold itself (a cycle of shared_ptrs, never freed) or nest
  // containers a million deep (freed recursively, past the stack): emptying every container
  // here, while all are still held, frees them all without either (fuzzing found the leak).
  virtual ~Unpickler() {
    for (auto& c : containers_) c->items.clear(), c->entries.clear();
  }
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;
  ValuePtr run();

 protected:
  // What a REDUCE of `callable` (a Global, or any value) with `args` builds, and what a
  // persistent id stands for: the format's own objects (torch_file.cpp: tensors).
  virtual ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args) = 0;
  virtual ValuePtr persistent_load(const ValuePtr& pid) = 0;
  ValuePtr container(Value::Kind k) {  // a Tuple, List or Dict, emptied by the destructor
    containers_.push_back(make(k));
    return containers_.back();
  }

 private:
  uint8_t byte() { return static_cast<uint8_t>(need(1)[0]); }
  const char* need(size_t n) {
    if (n > p_.size() - pos_) throw std::runtime_error("pickle ends early");
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
  bool step();                 // one opcode; false at STOP
  bool scalar_op(uint8_t op);  // each: false when `op` is not one of its opcodes
  bool string_op(uint8_t op);
  bool container_op(uint8_t op);
  bool memo_op(uint8_t op);
  bool object_op(uint8_t op);

  const std::string& p_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
  std::vector<ValuePtr> containers_;
};

}  // namespace lpld::pickle
