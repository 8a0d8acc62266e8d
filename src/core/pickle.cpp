#include "core/pickle.h"

#include <fmt/format.h>

namespace lpld::pickle {

ValuePtr make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

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

// Constants: protocol and frame markers, None, bools, numbers, globals.
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

// Strings and bytes (both become Str): the opcode says how wide their length is.
bool Unpickler::string_op(uint8_t op) {
  uint64_t n = 0;
  switch (op) {
    case 'C':   // SHORT_BINBYTES
    case 'U':   // SHORT_BINSTRING
    case 0x8c:  // SHORT_BINUNICODE
      n = byte();
      break;
    case 'B':  // BINBYTES
    case 'T':  // BINSTRING
    case 'X':  // BINUNICODE
      n = little<uint32_t>();
      break;
    case 0x8d:  // BINUNICODE8
      n = little<uint64_t>();
      break;
    default:
      return false;
  }
  const char* at = need(n);
  stack_.push_back(str(std::string(at, n)));
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
  if (!scalar_op(op) && !string_op(op) && !container_op(op) && !memo_op(op) && !object_op(op))
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

}  // namespace lpld::pickle
