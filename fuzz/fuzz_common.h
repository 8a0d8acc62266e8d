// Shared by the libFuzzer targets (issue: fuzzed readers). Each target feeds the fuzzer's
// bytes to one reader, as a user's damaged or hostile file would reach it. An exception
// derived from std::exception is the reader rejecting the input (expected); a crash, a hang,
// or an AddressSanitizer / UndefinedBehaviorSanitizer report is a finding.
//
// Build: `make fuzz` (clang-14 with -fsanitize=fuzzer,address,undefined, in build-fuzz/).
// Add a target: fuzz/fuzz_<name>.cpp defining LLVMFuzzerTestOneInput with fuzz::run(...), a
// seed corpus fuzz/corpus/<name>/, and <name>:<the layer it fuzzes> in LPLD_FUZZ_TARGETS
// (CMakeLists.txt; a target links only that layer).
#pragma once
#include <torch/torch.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace lpld::fuzz {

// A per-process scratch folder, made once.
inline const std::string& scratch() {
  static const std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("lpld-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    torch::set_num_threads(1);
    return d.string();
  }();
  return dir;
}

inline std::string write(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// Runs `body`; a rejected input (an exception) is fine, anything else is the fuzzer's.
template <typename Body>
int run(Body body) {
  try {
    body();
  } catch (const std::exception&) {
  }
  return 0;
}

}  // namespace lpld::fuzz
