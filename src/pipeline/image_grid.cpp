#include "pipeline/image_grid.h"

#include <torch/torch.h>

#include "data/dataset.h"
#include "data/image_io.h"

namespace lpld::pipeline {

void write_image_grid(const std::string& image_dir, const std::string& png_path,
                      int64_t max_per_row) {
  auto ds = data::load_into_memory(data::open_dataset("imagefolder:" + image_dir));
  const auto& images = ds->images();  // [N, C, H, W]
  const int64_t C = ds->num_classes(), ch = images.size(1), H = images.size(2), W = images.size(3);
  const int64_t pad = 1;
  auto labels = ds->labels();
  int64_t per_row = 0;
  for (int64_t c = 0; c < C; ++c)
    per_row = std::max(per_row, std::min(max_per_row, labels.eq(c).sum().item<int64_t>()));
  auto grid = torch::full({ch, C * (H + pad) + pad, per_row * (W + pad) + pad}, 255, torch::kUInt8);
  using torch::indexing::Slice;
  for (int64_t c = 0; c < C; ++c) {
    auto idx = torch::nonzero(labels.eq(c)).flatten();
    for (int64_t k = 0; k < std::min(per_row, idx.size(0)); ++k) {
      const int64_t y = pad + c * (H + pad), x = pad + k * (W + pad);
      grid.index_put_({Slice(), Slice(y, y + H), Slice(x, x + W)}, images[idx[k].item<int64_t>()]);
    }
  }
  data::write_png(png_path, grid);
}

}  // namespace lpld::pipeline
