// A PNG overview of a synthetic image folder: one row per class, its images left to right.
#pragma once
#include <string>

namespace lpld::pipeline {

// Reads `image_dir` (recover output) and writes the grid to `png_path`; at most
// `max_per_row` images per class.
void write_image_grid(const std::string& image_dir, const std::string& png_path,
                      int64_t max_per_row = 20);

}  // namespace lpld::pipeline
