// Choices as types (issue 29): an option with a fixed set of values is an enum with one table
// of names, from which parsing, printing, help text and docs come. An enum E takes part by
// declaring, next to itself (found by argument-dependent lookup),
//
//   const std::vector<Choice<E>>& choices(E);   // every value, in the order help lists them
//
// and is then a field type OptionSet accepts (core/options.h): flags and YAML take the names,
// results record them.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace lpld {

template <typename E>
struct Choice {
  E value;
  const char* name;
};

// The name of `value` in its table.
template <typename E>
std::string choice_name(E value) {
  for (const auto& c : choices(E{}))
    if (c.value == value) return c.name;
  throw std::logic_error("an enum value without a name in its choices table");
}

// "a, b or c": the names, for help and error text.
template <typename E>
std::string choice_list() {
  const auto& table = choices(E{});
  std::string out;
  for (size_t i = 0; i < table.size(); ++i)
    out += (i == 0 ? "" : i + 1 == table.size() ? " or " : ", ") + std::string(table[i].name);
  return out;
}

// The value named `text`; anything else is an invalid_argument naming `what` (a flag, or a
// file and its field) and every valid name.
template <typename E>
E parse_choice(const std::string& text, const std::string& what) {
  for (const auto& c : choices(E{}))
    if (text == c.name) return c.value;
  throw std::invalid_argument(what + ": must be " + choice_list<E>() + ", not '" + text + "'");
}

}  // namespace lpld
