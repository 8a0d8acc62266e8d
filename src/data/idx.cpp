// IDX reader (the MNIST / Fashion-MNIST file format): a big-endian header (magic, dims)
// followed by raw uint8 data. Files may be gzipped or raw; zlib's gzread reads both.
#include <zlib.h>

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/io.h"
#include "data/dataset.h"

namespace lpld::data {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // uint8, 3 dims
constexpr uint32_t kLabelsMagic = 0x00000801;  // uint8, 1 dim

// The whole (decompressed) content of a gzipped or raw file.
std::string read_maybe_gzipped(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) fail_file(path, "cannot open (missing or unreadable)");
  std::string out;
  std::vector<char> chunk(1 << 20);
  for (;;) {
    const int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(f, &code);
      gzclose(f);
      fail_file(path, "read error (corrupt or truncated gzip?): " + message);
    }
    if (n == 0) break;
    out.append(chunk.data(), static_cast<size_t>(n));
  }
  gzclose(f);
  return out;
}

uint32_t be32(const std::string& s, size_t offset) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + offset;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// DIR/NAME.gz if present, else DIR/NAME.
std::string find_idx_file(const std::string& dir, const std::string& name) {
  const std::string base = (std::filesystem::path(dir) / name).string();
  if (file_exists(base + ".gz")) return base + ".gz";
  if (file_exists(base)) return base;
  fail_file(base + "[.gz]", "not found");
}

// Reads and checks the header; returns the dims (count first).
std::vector<uint32_t> read_header(const std::string& path, const std::string& data, uint32_t magic,
                                  const char* what) {
  check_file(data.size() >= 4, path, "truncated: too short for an IDX header");
  const uint32_t found = be32(data, 0);
  if (found != magic) {
    fail_file(path, fmt::format("wrong magic 0x{:08x} (expected 0x{:08x}: IDX uint8 {})", found,
                                magic, what));
  }
  const size_t ndims = magic & 0xFF;
  check_file(data.size() >= 4 + 4 * ndims, path, "truncated: header incomplete");
  std::vector<uint32_t> dims(ndims);
  uint64_t expected = 4 + 4 * ndims;
  uint64_t elements = 1;
  for (size_t i = 0; i < ndims; ++i) {
    dims[i] = be32(data, 4 + 4 * i);
    check_file(dims[i] > 0, path, fmt::format("dimension {} is 0", i));
    elements *= dims[i];
    check_file(elements < (uint64_t{1} << 40), path, "dimensions too large");
  }
  expected += elements;
  if (data.size() < expected) {
    fail_file(path, fmt::format("truncated: {} bytes, header says {}", data.size(), expected));
  }
  check_file(data.size() == expected, path,
             fmt::format("{} unexpected bytes after the data", data.size() - expected));
  return dims;
}

}  // namespace

std::vector<std::string> fashion_mnist_class_names() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
}

std::shared_ptr<TensorDataset> read_idx_dataset(const std::string& dir, bool train,
                                                std::vector<std::string> class_names,
                                                const std::string& spec) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");

  const std::string images_data = read_maybe_gzipped(images_path);
  const auto idims = read_header(images_path, images_data, kImagesMagic, "images");
  const std::string labels_data = read_maybe_gzipped(labels_path);
  const auto ldims = read_header(labels_path, labels_data, kLabelsMagic, "labels");
  if (idims[0] != ldims[0]) {
    fail_file(labels_path,
              fmt::format("has {} labels but {} has {} images", ldims[0], images_path, idims[0]));
  }
  const int64_t n = idims[0], rows = idims[1], cols = idims[2];
  const int64_t num_classes = static_cast<int64_t>(class_names.size());

  auto labels = torch::empty({n}, torch::kInt64);
  auto* lp = labels.data_ptr<int64_t>();
  const auto* raw_labels = reinterpret_cast<const uint8_t*>(labels_data.data()) + 8;
  for (int64_t i = 0; i < n; ++i) {
    lp[i] = raw_labels[i];
    if (lp[i] >= num_classes) {
      fail_file(labels_path,
                fmt::format("label {} at index {} is out of range [0, {})", lp[i], i, num_classes));
    }
  }
  auto images = torch::empty({n, 1, rows, cols}, torch::kUInt8);
  std::memcpy(images.data_ptr<uint8_t>(), images_data.data() + 16,
              static_cast<size_t>(n * rows * cols));
  return std::make_shared<TensorDataset>(std::move(images), std::move(labels),
                                         std::move(class_names), spec);
}

}  // namespace lpld::data
