// Streaming image sets on disk: ImageFolder (DIR/<class>/<image>) and the Tiny-ImageNet
// layout. Opening indexes paths and labels and reads image headers (no decoding); image(i)
// decodes one file, so memory use does not grow with the set.
//
// Channels: a set is gray (C = 1) only if every probed image is gray; gray images in a
// color set are replicated to 3 channels. Size: when every file was probed and all share
// one size, fixed_size() reports it (this is how the tool reads back its own synthetic
// PNGs at their native resolution); Tiny-ImageNet is 64x64 by definition.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/io.h"
#include "data/dataset.h"
#include "data/folder.h"
#include "data/image_io.h"

namespace lpld::data {
namespace {
namespace fs = std::filesystem;

// Folders up to this many files have every header probed (fast: headers only, in
// parallel); larger ones (ImageNet) probe an evenly spaced sample.
constexpr size_t kProbeAllLimit = 50000;
constexpr size_t kProbeSample = 64;

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool is_image_name(const fs::path& p) {
  const std::string name = p.filename().string();
  if (name.empty() || name[0] == '.') return false;  // hidden files, macOS "._x.jpg" junk
  const std::string ext = lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// gray [1, H, W] <-> color [3, H, W].
torch::Tensor to_channels(const torch::Tensor& image, int64_t channels) {
  if (image.size(0) == channels) return image;
  if (channels == 3) return image.expand({3, image.size(1), image.size(2)}).contiguous();
  // ITU-R BT.601 luma, the usual color-to-gray conversion.
  const auto rgb = image.to(torch::kInt32);
  return ((rgb[0] * 299 + rgb[1] * 587 + rgb[2] * 114 + 500) / 1000)
      .to(torch::kUInt8)
      .unsqueeze(0)
      .contiguous();
}

class FolderDataset : public Dataset {
 public:
  FolderDataset(std::vector<std::string> paths, std::vector<int64_t> labels,
                std::vector<std::string> class_names, std::string spec,
                std::optional<std::array<int64_t, 3>> known_shape)
      : paths_(std::move(paths)),
        labels_(std::move(labels)),
        class_names_(std::move(class_names)),
        spec_(std::move(spec)) {
    labels_tensor_ =
        torch::from_blob(labels_.data(), {static_cast<int64_t>(labels_.size())}, torch::kInt64)
            .clone();
    if (known_shape) {
      channels_ = (*known_shape)[0];
      size_ = {(*known_shape)[1], (*known_shape)[2]};
    } else {
      probe();
    }
  }

  int64_t size() const override { return static_cast<int64_t>(paths_.size()); }
  int64_t num_classes() const override { return static_cast<int64_t>(class_names_.size()); }
  std::vector<std::string> class_names() const override { return class_names_; }
  int64_t channels() const override { return channels_; }
  std::array<int64_t, 2> fixed_size() const override { return size_; }
  torch::Tensor image(int64_t index) const override { return image(index, 0); }
  torch::Tensor image(int64_t index, int64_t min_side) const override {
    const std::string& path = paths_.at(static_cast<size_t>(index));
    torch::Tensor img = to_channels(read_image(path, min_side), channels_);
    if (min_side == 0 && size_[0] > 0 && (img.size(1) != size_[0] || img.size(2) != size_[1])) {
      fail_file(path, fmt::format("image is {}x{}, expected {}x{} like the rest of the set",
                                  img.size(1), img.size(2), size_[0], size_[1]));
    }
    return img;
  }
  int64_t label(int64_t index) const override { return labels_.at(static_cast<size_t>(index)); }
  torch::Tensor labels() const override { return labels_tensor_; }
  std::string spec() const override { return spec_; }
  std::string source(int64_t index) const override { return paths_.at(static_cast<size_t>(index)); }

 private:
  // Reads image headers to find channels and (when uniform) the size.
  void probe() {
    const size_t n = paths_.size();
    const bool all = n <= kProbeAllLimit;
    std::vector<size_t> which;
    if (all) {
      for (size_t i = 0; i < n; ++i) which.push_back(i);
    } else {
      for (size_t k = 0; k < kProbeSample; ++k) which.push_back(k * n / kProbeSample);
    }
    std::vector<std::array<int64_t, 3>> shapes(which.size());
    detail::parallel_for(static_cast<int64_t>(which.size()), 0,
                         [&](int64_t k) { shapes[k] = probe_image(paths_[which[k]]); });
    channels_ = 1;
    bool uniform = true;
    for (const auto& s : shapes) {
      if (s[0] == 3) channels_ = 3;
      if (s[1] != shapes[0][1] || s[2] != shapes[0][2]) uniform = false;
    }
    size_ = (all && uniform) ? std::array<int64_t, 2>{shapes[0][1], shapes[0][2]}
                             : std::array<int64_t, 2>{0, 0};
  }

  std::vector<std::string> paths_;
  std::vector<int64_t> labels_;
  torch::Tensor labels_tensor_;
  std::vector<std::string> class_names_;
  std::string spec_;
  int64_t channels_ = 3;
  std::array<int64_t, 2> size_{0, 0};
};

}  // namespace

namespace folder {

void check_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail_file(dir, "not found");
  if (!fs::is_directory(dir, ec)) fail_file(dir, "not a directory");
}

// Sorted entries of `dir` that are directories (want_dirs) or image files.
std::vector<std::string> list_sorted(const std::string& dir, bool want_dirs) {
  check_dir(dir);
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) fail_file(dir, "cannot list directory: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) fail_file(dir, "cannot list directory: " + ec.message());
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    if (name.empty() || name[0] == '.') continue;  // hidden entries are not data
    // An entry that cannot be resolved (a symlink loop, a dangling link, no permission) is an
    // error: skipping it would silently drop a class or an image.
    std::error_code ec2;
    const auto status = fs::status(p, ec2);
    if (ec2 && (want_dirs || is_image_name(p)))
      fail_file(p.string(), "cannot read this entry: " + ec2.message());
    if (want_dirs) {
      if (fs::is_directory(status)) out.push_back(name);
    } else if (is_image_name(p)) {
      if (!fs::is_regular_file(status))
        fail_file(p.string(), "is named as an image but is not a file");
      out.push_back(p.string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Non-empty, trimmed lines of a text file.
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail_file(path, "cannot open (missing or unreadable)");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t start = 0;
    while (start < line.size() && std::isspace(static_cast<unsigned char>(line[start]))) ++start;
    lines.push_back(line.substr(start));
  }
  return lines;
}

std::shared_ptr<Dataset> make_dataset(std::vector<std::string> paths, std::vector<int64_t> labels,
                                      std::vector<std::string> class_names, std::string spec,
                                      std::optional<std::array<int64_t, 3>> known_shape) {
  return std::make_shared<FolderDataset>(std::move(paths), std::move(labels),
                                         std::move(class_names), std::move(spec), known_shape);
}

}  // namespace folder

using folder::check_dir;
using folder::list_sorted;
using folder::read_lines;

std::shared_ptr<Dataset> open_image_folder(const std::string& dir, const std::string& spec) {
  const std::vector<std::string> classes = list_sorted(dir, /*want_dirs=*/true);
  if (classes.empty()) {
    fail_file(dir, "no class folders (expected DIR/<class>/<image>.png|.jpg|.jpeg)");
  }
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  for (size_t c = 0; c < classes.size(); ++c) {
    const std::string class_dir = (fs::path(dir) / classes[c]).string();
    const auto files = list_sorted(class_dir, /*want_dirs=*/false);
    check_file(!files.empty(), class_dir, "class folder has no images (.png, .jpg, .jpeg)");
    paths.insert(paths.end(), files.begin(), files.end());
    labels.insert(labels.end(), files.size(), static_cast<int64_t>(c));
  }
  return std::make_shared<FolderDataset>(std::move(paths), std::move(labels), classes, spec,
                                         std::nullopt);
}

std::shared_ptr<Dataset> open_tiny_imagenet(const std::string& dir, bool train,
                                            const std::string& spec) {
  check_dir(dir);
  const std::string train_dir = (fs::path(dir) / "train").string();
  const std::string wnids_path = (fs::path(dir) / "wnids.txt").string();
  std::vector<std::string> wnids;
  if (file_exists(wnids_path)) {
    for (auto& line : read_lines(wnids_path)) {
      if (!line.empty()) wnids.push_back(line);
    }
    check_file(!wnids.empty(), wnids_path, "lists no classes");
    std::set<std::string> unique(wnids.begin(), wnids.end());
    check_file(unique.size() == wnids.size(), wnids_path, "lists a class twice");
  } else {
    wnids = list_sorted(train_dir, /*want_dirs=*/true);
    check_file(!wnids.empty(), train_dir, "no class folders");
  }
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < wnids.size(); ++i) index[wnids[i]] = static_cast<int64_t>(i);

  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  if (train) {
    for (size_t c = 0; c < wnids.size(); ++c) {
      const std::string images_dir = (fs::path(train_dir) / wnids[c] / "images").string();
      const auto files = list_sorted(images_dir, /*want_dirs=*/false);
      check_file(!files.empty(), images_dir, "class folder has no images");
      paths.insert(paths.end(), files.begin(), files.end());
      labels.insert(labels.end(), files.size(), static_cast<int64_t>(c));
    }
  } else {
    const fs::path val_dir = fs::path(dir) / "val";
    const std::string ann_path = (val_dir / "val_annotations.txt").string();
    const auto lines = read_lines(ann_path);
    for (size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].empty()) continue;
      const size_t tab1 = lines[i].find('\t');
      const size_t tab2 = tab1 == std::string::npos ? tab1 : lines[i].find('\t', tab1 + 1);
      if (tab1 == std::string::npos) {
        fail_file(ann_path, fmt::format("line {}: expected <file>\\t<wnid>\\t...", i + 1));
      }
      const std::string file = lines[i].substr(0, tab1);
      const std::string wnid = lines[i].substr(
          tab1 + 1, tab2 == std::string::npos ? std::string::npos : tab2 - tab1 - 1);
      const auto it = index.find(wnid);
      if (it == index.end()) {
        fail_file(ann_path, fmt::format("line {}: unknown class '{}'", i + 1, wnid));
      }
      const std::string path = (val_dir / "images" / file).string();
      if (file.empty() || file.find('/') != std::string::npos || !file_exists(path)) {
        fail_file(path, fmt::format("missing (listed on line {} of {})", i + 1, ann_path));
      }
      paths.push_back(path);
      labels.push_back(it->second);
    }
    check_file(!paths.empty(), ann_path, "lists no images");
  }
  // Tiny-ImageNet is 64x64 RGB by definition (its few gray images are replicated to RGB);
  // image(i) checks the size of every image it decodes.
  return std::make_shared<FolderDataset>(std::move(paths), std::move(labels), wnids, spec,
                                         std::array<int64_t, 3>{3, 64, 64});
}

}  // namespace lpld::data
