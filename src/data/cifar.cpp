// CIFAR-10 / CIFAR-100 readers for the "binary version" of the sets: fixed-size records of
// label byte(s) followed by 3072 bytes of a 32x32 image stored plane by plane (R, G, B),
// which is already the [C, H, W] layout we want.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/io.h"
#include "data/dataset.h"

namespace lpld::data {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kImageBytes = 3 * 32 * 32;

// DIR itself when it holds `probe`, else DIR/<subdir> (the folder inside the archive).
std::string resolve_dir(const std::string& dir, const std::string& subdir,
                        const std::string& probe) {
  if (file_exists((fs::path(dir) / probe).string())) return dir;
  const fs::path nested = fs::path(dir) / subdir;
  if (file_exists((nested / probe).string())) return nested.string();
  return dir;  // report missing files under DIR
}

// Appends the records of `path` to images/labels; `label_offset` picks the label byte.
void read_batch(const std::string& path, int64_t label_bytes, int64_t label_offset,
                int64_t num_classes, std::vector<uint8_t>& images, std::vector<int64_t>& labels) {
  const std::string data = read_file(path);
  const int64_t record = label_bytes + kImageBytes;
  const int64_t size = static_cast<int64_t>(data.size());
  check_file(size > 0, path, "empty file");
  if (size % record != 0) {
    fail_file(path, fmt::format("truncated: {} bytes is not a multiple of the {}-byte record", size,
                                record));
  }
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  for (int64_t r = 0; r < size / record; ++r) {
    const uint8_t* rec = p + r * record;
    const int64_t label = rec[label_offset];
    if (label >= num_classes) {
      fail_file(path, fmt::format("label {} of record {} is out of range [0, {})", label, r,
                                  num_classes));
    }
    labels.push_back(label);
    images.insert(images.end(), rec + label_bytes, rec + record);
  }
}

// Non-empty lines of a names file; it must list exactly `expected` names.
std::vector<std::string> read_names(const std::string& path, size_t expected) {
  std::ifstream in(path);
  if (!in) fail_file(path, "cannot open (missing or unreadable)");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    if (!line.empty()) names.push_back(line);
  }
  check_file(names.size() == expected, path,
             fmt::format("lists {} class names, expected {}", names.size(), expected));
  return names;
}

std::shared_ptr<TensorDataset> make_dataset(std::vector<uint8_t>& images,
                                            std::vector<int64_t>& labels,
                                            std::vector<std::string> names,
                                            const std::string& spec) {
  const int64_t n = static_cast<int64_t>(labels.size());
  auto image_tensor = torch::empty({n, 3, 32, 32}, torch::kUInt8);
  std::memcpy(image_tensor.data_ptr<uint8_t>(), images.data(), images.size());
  auto label_tensor = torch::empty({n}, torch::kInt64);
  std::memcpy(label_tensor.data_ptr<int64_t>(), labels.data(), labels.size() * sizeof(int64_t));
  return std::make_shared<TensorDataset>(std::move(image_tensor), std::move(label_tensor),
                                         std::move(names), spec);
}

}  // namespace

std::shared_ptr<TensorDataset> read_cifar10(const std::string& dir_arg, bool train,
                                            const std::string& spec) {
  const std::string dir =
      resolve_dir(dir_arg, "cifar-10-batches-bin", train ? "data_batch_1.bin" : "test_batch.bin");
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= 5; ++i) files.push_back("data_batch_" + std::to_string(i) + ".bin");
  } else {
    files.push_back("test_batch.bin");
  }
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  for (const auto& f : files) {
    read_batch((fs::path(dir) / f).string(), 1, 0, 10, images, labels);
  }
  const std::string meta = (fs::path(dir) / "batches.meta.txt").string();
  std::vector<std::string> names =
      file_exists(meta)
          ? read_names(meta, 10)
          : std::vector<std::string>{"airplane", "automobile", "bird",  "cat",  "deer",
                                     "dog",      "frog",       "horse", "ship", "truck"};
  return make_dataset(images, labels, std::move(names), spec);
}

std::shared_ptr<TensorDataset> read_cifar100(const std::string& dir_arg, bool train,
                                             const std::string& spec) {
  const std::string dir =
      resolve_dir(dir_arg, "cifar-100-binary", train ? "train.bin" : "test.bin");
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  // Records are <coarse label><fine label><image>; we use the fine (100-class) label.
  read_batch((fs::path(dir) / (train ? "train.bin" : "test.bin")).string(), 2, 1, 100, images,
             labels);
  const std::string meta = (fs::path(dir) / "fine_label_names.txt").string();
  std::vector<std::string> names;
  if (file_exists(meta)) {
    names = read_names(meta, 100);
  } else {
    for (int i = 0; i < 100; ++i) names.push_back(std::to_string(i));
  }
  return make_dataset(images, labels, std::move(names), spec);
}

}  // namespace lpld::data
