// Test helpers: a temporary directory removed at the end of the test; an expected exception
// and what its message must say; the values of a JSON-lines file.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/io.h"

namespace lpld::test {

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("lpld-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string path(const std::string& name = "") const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The device of the tests that take one: LPLD_TEST_DEVICE (scripts/gpu-check.sh sets cuda),
// cpu when unset.
inline std::string device() {
  const char* d = std::getenv("LPLD_TEST_DEVICE");
  return d != nullptr && *d != '\0' ? d : "cpu";
}

// Expects fn to throw E whose message contains every string in `parts`.
template <typename E = std::runtime_error>
void expect_throw_with(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    for (const auto& p : parts) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "'" << p << "' not in: " << e.what();
    }
  }
}

// The JSON values of a JSON-lines file (a progress log), one per line.
inline std::vector<json> json_lines(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

inline bool have_fashion_mnist() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
}

}  // namespace lpld::test
