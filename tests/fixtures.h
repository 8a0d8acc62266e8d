// Shared test fixtures: a toy labelled image folder (3 classes of 16x16 patterns that a
// small ConvNet separates in seconds) and a teacher trained on it by squeeze.
#pragma once
#include <map>
#include <string>

#include "test_util.h"

namespace lpld::test {

// Writes DIR/{train,val}/<class>/*.png: class 0 horizontal stripes, 1 vertical stripes,
// 2 a checkerboard, each with noise and a random phase. 16x16 gray.
void make_toy_folder(const std::string& dir, int per_class_train = 60, int per_class_val = 20);

// A folder + teacher made once per test binary (under a temp dir removed at exit).
struct Toy {
  std::string root, train, val, teacher;
};
const Toy& toy();

// Every PNG under `dir`: relative path -> bytes (to compare image folders byte for byte).
std::map<std::string, std::string> png_bytes(const std::string& dir);

}  // namespace lpld::test
