// Decoding and encoding of single images (libpng, libjpeg-turbo).
#pragma once
#include <torch/torch.h>

#include <array>
#include <string>

namespace lpld::data {

// Decodes a PNG or JPEG file (chosen by content, not extension) to uint8 [C, H, W] with
// C = 1 for grayscale, 3 for color (alpha dropped, palette expanded, 16-bit reduced).
// Throws runtime_error naming the file on any problem.
// min_side > 0: a JPEG may be decoded at a reduced scale (libjpeg-turbo, M/8 for M = 1..8, the
// smallest whose short side is still >= min_side) when only that size is needed (evaluation
// at a smaller resolution). PNGs are always decoded whole.
torch::Tensor read_image(const std::string& path, int64_t min_side = 0);
torch::Tensor decode_image(const std::string& bytes, const std::string& name_for_errors,
                           int64_t min_side = 0);

// Writes uint8 [C, H, W] (C = 1 or 3) as a lossless PNG, atomically.
void write_png(const std::string& path, const torch::Tensor& image);
// Encodes to PNG bytes in memory.
std::string encode_png(const torch::Tensor& image);
// Encodes uint8 [C, H, W] (C = 1 or 3) as a baseline JPEG (lossy; for tests and previews).
std::string encode_jpeg(const torch::Tensor& image, int quality = 95);

// Reads only the header: {C, H, W} as read_image would return them. Cheap (no decode).
std::array<int64_t, 3> probe_image(const std::string& path);

}  // namespace lpld::data
