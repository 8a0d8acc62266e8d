// recover's output folder: one ImageFolder class folder per class (NNN_<name>/NNNNN.png and
// class.json), written so that a class folder appears only when complete. A unit's PNGs go
// to its classes' hidden staging folders (.tmp-NNN_<name>) as soon as it is done, so memory
// does not grow with the set; publishing a class renames its staging folder.
// Class numbers are zero-padded to max(3, digits of C - 1), so folder order is class order
// for any number of classes.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/io.h"

namespace lpld::recover {

class ClassFolders {
 public:
  ClassFolders(std::string out, std::vector<std::string> class_names);
  std::string dir(int64_t c) const;      // out/NNN_name
  std::string staging(int64_t c) const;  // out/.tmp-NNN_name
  std::string name(int64_t c) const;     // NNN_name
  bool complete(int64_t c) const;
  int64_t num_classes() const { return static_cast<int64_t>(names_.size()); }
  // Writes images[i] (uint8 [C, H, W]) as staging(c)/NNNNN.png, NNNNN = first_index + i.
  void stage(int64_t c, const torch::Tensor& images, int64_t first_index) const;
  // Removes a pending class's staging folder (leftovers of a killed run).
  void clear_staging(int64_t c) const;
  // Writes class.json (with each image's name, bytes and xxh64) into the staging folder and
  // renames it into place.
  void publish(int64_t c, json class_json) const;
  // PNG files and bytes in complete class folders.
  std::pair<int64_t, int64_t> count_images() const;

 private:
  std::string out_;
  std::vector<std::string> names_;
  int width_;
};

}  // namespace lpld::recover
