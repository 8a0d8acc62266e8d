#include "recover/class_folders.h"

#include <fmt/format.h>

#include <filesystem>

#include "data/image_io.h"

namespace lpld::recover {
namespace fs = std::filesystem;
namespace {
std::string sanitize(const std::string& name) {
  std::string out;
  for (char ch : name)
    out += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-') ? ch : '_';
  return out;
}
}  // namespace

ClassFolders::ClassFolders(std::string out, std::vector<std::string> class_names)
    : out_(std::move(out)), names_(std::move(class_names)) {
  width_ = static_cast<int>(std::to_string(std::max<size_t>(1, names_.size()) - 1).size());
  width_ = std::max(3, width_);
}

std::string ClassFolders::name(int64_t c) const {
  return fmt::format("{:0{}d}_{}", c, width_, sanitize(names_.at(static_cast<size_t>(c))));
}
std::string ClassFolders::dir(int64_t c) const { return out_ + "/" + name(c); }
std::string ClassFolders::staging(int64_t c) const { return out_ + "/.tmp-" + name(c); }
bool ClassFolders::complete(int64_t c) const { return fs::exists(dir(c)); }

void ClassFolders::stage(int64_t c, const torch::Tensor& images, int64_t first_index) const {
  const std::string d = staging(c);
  make_dirs(d);
  for (int64_t i = 0; i < images.size(0); ++i)
    data::write_png(fmt::format("{}/{:05d}.png", d, first_index + i), images[i]);
}

void ClassFolders::clear_staging(int64_t c) const { fs::remove_all(staging(c)); }

void ClassFolders::publish(int64_t c, json class_json) const {
  make_dirs(staging(c));
  // Each image's name, bytes and hash: what the image set's identity is taken from later
  // (labels/image_set.h), so no run has to re-read the whole set to know it.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(staging(c)))
    if (e.path().extension() == ".png") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  json images = json::array();
  for (const auto& n : names) {
    const std::string bytes = read_file(staging(c) + "/" + n);
    images.push_back({n, bytes.size(), hash_bytes(bytes.data(), bytes.size())});
  }
  class_json["images"] = images;
  write_json(staging(c) + "/class.json", class_json);
  fs::rename(staging(c), dir(c));
}

std::pair<int64_t, int64_t> ClassFolders::count_images() const {
  int64_t images = 0, bytes = 0;
  for (int64_t c = 0; c < static_cast<int64_t>(names_.size()); ++c) {
    if (!complete(c)) continue;  // complete folders only: staging folders change under us
    for (const auto& e : fs::directory_iterator(dir(c)))
      if (e.is_regular_file() && e.path().extension() == ".png") {
        bytes += static_cast<int64_t>(e.file_size());
        ++images;
      }
  }
  return {images, bytes};
}

}  // namespace lpld::recover
