#include "pipeline/image_grid.h"

#include <torch/torch.h>

#include "data/image_io.h"
#include "labels/image_set.h"

namespace lpld::pipeline {

void write_image_grid(const std::string& image_dir, const std::string& png_path,
                      int64_t max_per_row) {
  // Reads only the images shown: at most max_per_row of each class.
  const auto set = labels::ImageSet::open(image_dir);
  const int64_t C = set.num_classes(), ch = set.channels(), H = set.height(), W = set.width();
  const int64_t pad = 1;
  std::vector<std::vector<int64_t>> shown(static_cast<size_t>(C));
  for (int64_t i = 0; i < set.size(); ++i)
    if (static_cast<int64_t>(shown[set.labels()[i]].size()) < max_per_row)
      shown[set.labels()[i]].push_back(i);
  int64_t per_row = 0;
  for (const auto& s : shown) per_row = std::max<int64_t>(per_row, static_cast<int64_t>(s.size()));
  auto grid = torch::full({ch, C * (H + pad) + pad, per_row * (W + pad) + pad}, 255, torch::kUInt8);
  using torch::indexing::Slice;
  for (int64_t c = 0; c < C; ++c) {
    if (shown[c].empty()) continue;
    auto images = set.read(shown[c]);
    for (int64_t k = 0; k < images.size(0); ++k) {
      const int64_t y = pad + c * (H + pad), x = pad + k * (W + pad);
      grid.index_put_({Slice(), Slice(y, y + H), Slice(x, x + W)}, images[k]);
    }
  }
  data::write_png(png_path, grid);
}

}  // namespace lpld::pipeline
