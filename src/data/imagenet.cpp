// ImageNet (ILSVRC2012, and ImageNet-21K in the same folder layout) as it is distributed:
//
//   DIR/train/<wnid>/<image>.JPEG          the training set, one folder per class
//   DIR/val/<image>.JPEG                   the validation set, one flat folder, labelled by
//     DIR/LOC_val_solution.csv             the Kaggle release's "ImageId,PredictionString"
//                                          (the label is the first wnid of the string), or
//     DIR/val_labels.txt                   "<file> <wnid>" per line
//   DIR/val/<wnid>/<image>.JPEG            or a validation set already sorted into folders
//
// DIR may also be the Kaggle release's top folder (its images under ILSVRC/Data/CLS-LOC).
// Classes are indexed by sorted wnid, as torchvision's ImageFolder does, so an imported
// torchvision teacher's outputs mean the same classes. Without train/, the classes are the
// wnids of DIR/LOC_synset_mapping.txt. Every image must have exactly one label and every label
// an image and a known class: a gap in ImageNet's labels would silently shift a top-1.
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "core/io.h"
#include "data/dataset.h"
#include "data/folder.h"

namespace lpld::data {
namespace {
namespace fs = std::filesystem;

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// The folder holding train/ and val/: DIR, or the Kaggle release's ILSVRC/Data/CLS-LOC.
fs::path image_root(const std::string& dir) {
  folder::check_dir(dir);
  const fs::path kaggle = fs::path(dir) / "ILSVRC" / "Data" / "CLS-LOC";
  if (!is_dir(fs::path(dir) / "train") && !is_dir(fs::path(dir) / "val") && is_dir(kaggle))
    return kaggle;
  return dir;
}

// Sorted wnids: train/'s class folders, else the first word of each line of
// LOC_synset_mapping.txt.
std::vector<std::string> class_wnids(const std::string& dir, const fs::path& root) {
  if (is_dir(root / "train")) {
    auto wnids = folder::list_sorted((root / "train").string(), /*want_dirs=*/true);
    check_file(!wnids.empty(), (root / "train").string(), "no class folders");
    return wnids;
  }
  const std::string mapping = (fs::path(dir) / "LOC_synset_mapping.txt").string();
  check_file(file_exists(mapping), (root / "train").string(),
             "not found, nor " + mapping + " (the classes are train's folders or that list)");
  std::vector<std::string> wnids;
  for (const auto& line : folder::read_lines(mapping))
    if (!line.empty()) wnids.push_back(line.substr(0, line.find_first_of(" \t")));
  std::sort(wnids.begin(), wnids.end());
  check_file(!wnids.empty(), mapping, "lists no classes");
  check_file(std::adjacent_find(wnids.begin(), wnids.end()) == wnids.end(), mapping,
             "lists a class twice");
  return wnids;
}

// Images of class folders <base>/<wnid>/, labelled by the wnid's index; every folder must be a
// known class (a val folder of another class list would be mislabelled).
void class_folders(const fs::path& base, const std::map<std::string, int64_t>& index,
                   std::vector<std::string>& paths, std::vector<int64_t>& labels) {
  for (const auto& wnid : folder::list_sorted(base.string(), /*want_dirs=*/true)) {
    const auto it = index.find(wnid);
    check_file(it != index.end(), (base / wnid).string(), "is not one of the classes of train");
    const auto files = folder::list_sorted((base / wnid).string(), /*want_dirs=*/false);
    check_file(!files.empty(), (base / wnid).string(), "class folder has no images");
    paths.insert(paths.end(), files.begin(), files.end());
    labels.insert(labels.end(), files.size(), it->second);
  }
}

// file name -> (wnid, line number) from LOC_val_solution.csv or a "<file> <wnid>" list.
struct ValLabels {
  std::string path;
  std::map<std::string, std::pair<std::string, size_t>> by_file;
};

ValLabels read_val_labels(const std::string& dir) {
  ValLabels v;
  for (const char* name : {"LOC_val_solution.csv", "val_labels.txt"}) {
    const std::string p = (fs::path(dir) / name).string();
    if (file_exists(p)) {
      v.path = p;
      break;
    }
  }
  check_file(!v.path.empty(), (fs::path(dir) / "LOC_val_solution.csv").string(),
             "not found, nor val_labels.txt beside it: a flat val/ folder needs its labels");
  const bool csv = fs::path(v.path).extension() == ".csv";
  const auto lines = folder::read_lines(v.path);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.empty() || (csv && i == 0 && line.rfind("ImageId", 0) == 0)) continue;
    const size_t sep = line.find_first_of(csv ? "," : " \t");
    const size_t start = sep == std::string::npos ? sep : line.find_first_not_of(" \t,", sep);
    if (sep == 0 || start == std::string::npos)
      fail_file(v.path, fmt::format("line {}: expected {}", i + 1,
                                    csv ? "ImageId,<wnid> ..." : "<file> <wnid>"));
    std::string file = line.substr(0, sep);
    if (csv) file += ".JPEG";
    const std::string wnid = line.substr(start, line.find_first_of(" \t", start) - start);
    check_file(v.by_file.emplace(file, std::make_pair(wnid, i + 1)).second, v.path,
               fmt::format("line {}: {} is labelled twice", i + 1, file));
  }
  check_file(!v.by_file.empty(), v.path, "labels no image");
  return v;
}

// The flat val/ folder: every image labelled, every label an image of a known class.
void flat_val(const std::string& dir, const fs::path& val,
              const std::map<std::string, int64_t>& index, std::vector<std::string>& paths,
              std::vector<int64_t>& labels) {
  const ValLabels v = read_val_labels(dir);
  const auto files = folder::list_sorted(val.string(), /*want_dirs=*/false);
  check_file(!files.empty(), val.string(), "has no images");
  std::set<std::string> seen;
  for (const auto& path : files) {
    const std::string name = fs::path(path).filename().string();
    const auto it = v.by_file.find(name);
    check_file(it != v.by_file.end(), path, "has no label in " + v.path);
    const auto& [wnid, line] = it->second;
    const auto cls = index.find(wnid);
    check_file(cls != index.end(), v.path,
               fmt::format("line {}: unknown class '{}' (not a class of train)", line, wnid));
    paths.push_back(path);
    labels.push_back(cls->second);
    seen.insert(name);
  }
  for (const auto& [file, label] : v.by_file)
    check_file(seen.count(file) > 0, (val / file).string(),
               fmt::format("missing (labelled on line {} of {})", label.second, v.path));
}

}  // namespace

std::shared_ptr<Dataset> open_imagenet(const std::string& dir, bool train,
                                       const std::string& spec) {
  const fs::path root = image_root(dir);
  const auto wnids = class_wnids(dir, root);
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < wnids.size(); ++i) index[wnids[i]] = static_cast<int64_t>(i);
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  if (train) {
    class_folders(root / "train", index, paths, labels);
  } else {
    const fs::path val = root / "val";
    folder::check_dir(val.string());
    if (!folder::list_sorted(val.string(), /*want_dirs=*/true).empty())
      class_folders(val, index, paths, labels);
    else
      flat_val(dir, val, index, paths, labels);
  }
  // Sizes vary (decoded per image); a gray or CMYK file is made RGB like the rest.
  return folder::make_dataset(std::move(paths), std::move(labels), wnids, spec,
                              std::array<int64_t, 3>{3, 0, 0});
}

}  // namespace lpld::data
