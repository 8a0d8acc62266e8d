// The synthetic image set that recover wrote, as relabel, train and analyze read it: its
// identity (relative paths in class order, the class of each image, a content hash that label
// stores record) and its pixels, read per step so memory does not grow with the set
// (issue: ImageNet scale on one machine).
//
// Identity comes from recover's records, not from re-reading every file on every run: the
// class order from manifest.json (so no folder sorting decides class indices), each class's
// images with their byte counts and xxh64 hashes from its class.json; opening checks the files
// against them cheaply (names and sizes). A folder recover did not describe (or an older
// recover's) is listed and hashed in full, once per open.
//
// Pixels: a uint8 cache [N, C, H, W] in <dir>/.lpld-cache/, written once (decoded by worker
// threads) and named by the set's hash, opened once and read with pread per step (pread on one
// descriptor is safe from several threads: read-ahead threads read while others compute). Why a
// cache rather than decoding PNGs per step: decoding a 224 px PNG costs ~2 ms, a step of 128 images
// ~0.25 s of CPU, every step of every epoch; the cache costs one pass and 1 byte per pixel on disk,
// and reading a step from it is a page-cache copy. Why pread rather than mmap: a mapping's touched
// pages count in the process's resident set, so an epoch over a 30 GB set would show 30 GB.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace lpld::labels {

class ImageSet {
 public:
  // Throws runtime_error naming the folder or file when it is missing, incomplete, changed
  // since recover (a size or name that differs from class.json), or unreadable.
  static ImageSet open(const std::string& dir, int workers = 0);

  int64_t size() const { return static_cast<int64_t>(paths_.size()); }
  int64_t num_classes() const { return static_cast<int64_t>(class_names_.size()); }
  int64_t channels() const { return shape_[0]; }
  int64_t height() const { return shape_[1]; }
  int64_t width() const { return shape_[2]; }
  const std::vector<std::string>& paths() const { return paths_; }  // relative to the folder
  const std::vector<int64_t>& labels() const { return labels_; }
  torch::Tensor labels_tensor() const;
  const std::vector<std::string>& class_names() const { return class_names_; }
  const std::string& hash() const { return hash_; }  // xxh64 over paths and file contents
  int64_t bytes() const { return bytes_; }           // total file bytes
  const std::string& dir() const { return dir_; }

  // uint8 [n, C, H, W]: images `indices`, in that order, from the cache.
  torch::Tensor read(const std::vector<int64_t>& indices) const;
  // Every image (small sets and tests only: N x C x H x W bytes).
  torch::Tensor read_all() const;

 private:
  void open_cache(int workers);
  struct OpenFile;  // the cache's descriptor, closed with the last copy of the set
  std::string dir_, hash_, cache_;
  std::shared_ptr<const OpenFile> cache_file_;
  std::vector<std::string> paths_, class_names_;
  std::vector<int64_t> labels_;
  std::array<int64_t, 3> shape_{0, 0, 0};
  int64_t bytes_ = 0;
};

}  // namespace lpld::labels
