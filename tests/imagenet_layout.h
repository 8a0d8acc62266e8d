// A miniature ImageNet in its distributed layout (data/imagenet.cpp): train/<wnid>/ folders,
// a flat val/ of ILSVRC2012_val_*.JPEG and LOC_val_solution.csv, and (sorted_val) the same
// validation images sorted into val/<wnid>/ folders instead. Images are patterned JPEGs of
// varying sizes, as ImageNet's are.
#pragma once
#include <fmt/format.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/io.h"
#include "data/image_io.h"

namespace lpld::test {

struct ImageNetLayout {
  std::vector<std::string> wnids = {"n01440764", "n01443537", "n01484850"};  // sorted
  int train_per_class = 2, val_images = 6;
  // The class of validation image i (1-based file number i + 1), not in class order.
  int64_t val_class(int i) const { return (i * 2 + 1) % static_cast<int>(wnids.size()); }
  static std::string val_name(int i) { return fmt::format("ILSVRC2012_val_{:08d}", i + 1); }

  static torch::Tensor image(int64_t h, int64_t w, int seed) {
    return (torch::arange(3 * h * w, torch::kInt64).view({3, h, w}) * (7 + seed) + seed * 37)
        .remainder(256)
        .to(torch::kUInt8);
  }

  // Writes the layout under `dir`; with sorted_val the val images go to val/<wnid>/ and no
  // label file is written.
  void write(const std::string& dir, bool sorted_val = false) const {
    for (size_t c = 0; c < wnids.size(); ++c)
      for (int i = 0; i < train_per_class; ++i)
        write_file_atomic(fmt::format("{}/train/{}/{}_{}.JPEG", dir, wnids[c], wnids[c], i),
                          data::encode_jpeg(image(40 + 8 * i, 48 - 8 * i, static_cast<int>(c))));
    std::string csv = "ImageId,PredictionString\n";
    for (int i = 0; i < val_images; ++i) {
      const std::string& wnid = wnids[static_cast<size_t>(val_class(i))];
      const std::string sub = sorted_val ? wnid + "/" : "";
      write_file_atomic(fmt::format("{}/val/{}{}.JPEG", dir, sub, val_name(i)),
                        data::encode_jpeg(image(36 + 4 * i, 44, 10 + i)));
      csv += fmt::format("{},{} 1 2 30 40 {} 5 6 20 30 \n", val_name(i), wnid, wnid);
    }
    if (!sorted_val) write_file_atomic(dir + "/LOC_val_solution.csv", csv);
  }
};

}  // namespace lpld::test
