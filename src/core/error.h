// Error helpers. The library throws; the CLI catches, prints one line, exits non-zero.
// std::invalid_argument: a bad option or value (the message names it).
// std::runtime_error: a file that is missing, unreadable or malformed (the message names
// the file and what is wrong).
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace lpld {

// Throws std::invalid_argument("<option>: <message>") when `ok` is false.
inline void check_arg(bool ok, const std::string& option, const std::string& message) {
  if (!ok) throw std::invalid_argument(option + ": " + message);
}

// Throws std::runtime_error("<path>: <message>").
[[noreturn]] inline void fail_file(const std::string& path, const std::string& message) {
  throw std::runtime_error(path + ": " + message);
}

inline void check_file(bool ok, const std::string& path, const std::string& message) {
  if (!ok) fail_file(path, message);
}

}  // namespace lpld
