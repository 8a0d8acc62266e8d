// Tests of single-image decoding/encoding (src/data/image_io.cpp): exact PNG round trips,
// JPEG decode, alpha handling, and clean errors (naming the file) for broken files.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <filesystem>

#include "core/io.h"
#include "data/image_io.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace lpld::data;
using lpld::test::expect_throw_with;

namespace {

class ImageIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lpld-test-image-io-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

torch::Tensor random_image(int64_t c, int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {c, h, w}, torch::kUInt8);
}

// A smooth image: JPEG reproduces it closely.
torch::Tensor gradient_image(int64_t c, int64_t h, int64_t w) {
  auto y = torch::arange(h, torch::kFloat).view({1, h, 1}) * (200.0 / h);
  auto x = torch::arange(w, torch::kFloat).view({1, 1, w}) * (50.0 / w);
  auto ch = torch::arange(c, torch::kFloat).view({c, 1, 1}) * 10.0;
  return (y + x + ch).to(torch::kUInt8);
}

}  // namespace

TEST_F(ImageIoTest, PngRoundTripIsExact) {
  for (int64_t c : {1, 3}) {
    const auto image = random_image(c, 17, 23, 7 + c);
    const std::string p = path("img" + std::to_string(c) + ".png");
    write_png(p, image);
    const auto back = read_image(p);
    EXPECT_EQ(back.sizes(), image.sizes());
    EXPECT_EQ(back.scalar_type(), torch::kUInt8);
    EXPECT_TRUE(torch::equal(back, image)) << "channels " << c;
    EXPECT_EQ(probe_image(p), (std::array<int64_t, 3>{c, 17, 23}));
    // In memory too, and a non-contiguous input.
    EXPECT_TRUE(torch::equal(decode_image(encode_png(image), "mem"), image));
  }
  const auto big = random_image(3, 40, 30, 1);
  const auto view = big.narrow(2, 5, 20);  // non-contiguous
  EXPECT_TRUE(torch::equal(decode_image(encode_png(view), "view"), view));
}

TEST_F(ImageIoTest, PngAlphaIsDropped) {
  // RGBA and gray+alpha PNGs written with libpng directly.
  const auto rgb = random_image(3, 9, 11, 3);
  auto rgba =
      torch::cat({rgb, torch::full({1, 9, 11}, 77, torch::kUInt8)}).permute({1, 2, 0}).contiguous();
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = 11;
  img.height = 9;
  img.format = PNG_FORMAT_RGBA;
  ASSERT_TRUE(png_image_write_to_file(&img, path("rgba.png").c_str(), 0, rgba.data_ptr<uint8_t>(),
                                      0, nullptr));
  EXPECT_TRUE(torch::equal(read_image(path("rgba.png")), rgb));

  const auto gray = random_image(1, 9, 11, 4);
  auto ga = torch::cat({gray, torch::full({1, 9, 11}, 200, torch::kUInt8)})
                .permute({1, 2, 0})
                .contiguous();
  png_image img2{};
  img2.version = PNG_IMAGE_VERSION;
  img2.width = 11;
  img2.height = 9;
  img2.format = PNG_FORMAT_GA;
  ASSERT_TRUE(png_image_write_to_file(&img2, path("ga.png").c_str(), 0, ga.data_ptr<uint8_t>(), 0,
                                      nullptr));
  EXPECT_TRUE(torch::equal(read_image(path("ga.png")), gray));
}

TEST_F(ImageIoTest, JpegGrayAndColor) {
  for (int64_t c : {1, 3}) {
    const auto image = gradient_image(c, 24, 40);
    const std::string p = path("img" + std::to_string(c) + ".jpg");
    lpld::write_file_atomic(p, encode_jpeg(image, 95));
    const auto back = read_image(p);
    ASSERT_EQ(back.sizes(), image.sizes());
    const double err =
        (back.to(torch::kFloat) - image.to(torch::kFloat)).abs().mean().item<double>();
    EXPECT_LT(err, 3.0) << "channels " << c;
    EXPECT_EQ(probe_image(p), (std::array<int64_t, 3>{c, 24, 40}));
  }
}

TEST_F(ImageIoTest, FormatChosenByContentNotExtension) {
  const auto image = random_image(3, 5, 6, 9);
  lpld::write_file_atomic(path("really_png.jpg"), encode_png(image));
  EXPECT_TRUE(torch::equal(read_image(path("really_png.jpg")), image));
}

TEST_F(ImageIoTest, TruncatedFilesThrowNamingThePath) {
  const auto image = gradient_image(3, 32, 32) + random_image(3, 32, 32, 2).div(8, "floor");
  const std::string png = encode_png(image);
  const std::string jpg = encode_jpeg(image, 90);
  for (const double keep : {0.3, 0.6, 0.95}) {
    const std::string p = path("cut.png"), j = path("cut.jpg");
    const std::string cut_jpg = jpg.substr(0, static_cast<size_t>(jpg.size() * keep));
    lpld::write_file_atomic(p, png.substr(0, static_cast<size_t>(png.size() * keep)));
    lpld::write_file_atomic(j, cut_jpg);
    expect_throw_with([&] { read_image(p); }, {p});
    expect_throw_with([&] { read_image(j); }, {j});
    // cut, then closed with an end-of-image marker: libjpeg padded it with gray, silently
    const std::string closed = path("cut-closed.jpg");
    lpld::write_file_atomic(closed, cut_jpg + "\xff\xd9");
    expect_throw_with([&] { read_image(closed); }, {closed});
  }
  // Header only.
  lpld::write_file_atomic(path("head.png"), png.substr(0, 20));
  expect_throw_with([&] { read_image(path("head.png")); }, {path("head.png")});
  lpld::write_file_atomic(path("head.jpg"), jpg.substr(0, 4));
  expect_throw_with([&] { read_image(path("head.jpg")); }, {path("head.jpg")});
}

TEST_F(ImageIoTest, CorruptAndForeignFilesThrow) {
  const auto image = random_image(3, 16, 16, 5);
  std::string png = encode_png(image);
  png[png.size() / 2] ^= 0x5A;  // damage compressed data (CRC and/or zlib error)
  png[png.size() / 2 + 1] ^= 0x33;
  lpld::write_file_atomic(path("bad.png"), png);
  expect_throw_with([&] { read_image(path("bad.png")); }, {path("bad.png")});

  lpld::write_file_atomic(path("text.png"), "hello, not an image");
  expect_throw_with([&] { read_image(path("text.png")); }, {path("text.png"), "not a PNG or JPEG"});
  lpld::write_file_atomic(path("empty.jpg"), "");
  expect_throw_with([&] { read_image(path("empty.jpg")); }, {path("empty.jpg"), "empty"});
  expect_throw_with([&] { read_image(path("missing.png")); }, {path("missing.png")});
  expect_throw_with([&] { probe_image(path("text.png")); }, {path("text.png")});
}

TEST_F(ImageIoTest, EncodeRejectsBadShapes) {
  EXPECT_THROW(encode_png(torch::zeros({2, 4, 4}, torch::kUInt8)), std::invalid_argument);
  EXPECT_THROW(encode_png(torch::zeros({3, 4, 4}, torch::kFloat)), std::invalid_argument);
  EXPECT_THROW(encode_png(torch::zeros({4, 4}, torch::kUInt8)), std::invalid_argument);
  EXPECT_THROW(encode_jpeg(torch::zeros({4, 4, 4}, torch::kUInt8)), std::invalid_argument);
}

TEST_F(ImageIoTest, PaletteExpandedAnd16BitReduced) {
  // Palette PNG: 4 colors, indices pattern.
  const uint8_t colormap[4 * 3] = {0, 0, 0, 255, 0, 0, 0, 255, 0, 10, 20, 30};
  std::vector<uint8_t> indices(6 * 5);
  for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<uint8_t>(i % 4);
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = 5;
  img.height = 6;
  img.format = PNG_FORMAT_RGB_COLORMAP;
  img.colormap_entries = 4;
  ASSERT_TRUE(
      png_image_write_to_file(&img, path("pal.png").c_str(), 0, indices.data(), 0, colormap));
  const auto pal = read_image(path("pal.png"));
  ASSERT_EQ(pal.sizes(), (std::vector<int64_t>{3, 6, 5}));
  for (int64_t i = 0; i < 30; ++i) {
    for (int64_t c = 0; c < 3; ++c) {
      EXPECT_EQ(pal[c][i / 5][i % 5].item<uint8_t>(), colormap[(i % 4) * 3 + c]);
    }
  }

  // 16-bit RGB written with the classic API (no gamma chunk): values v * 257 read back as v.
  const auto rgb = random_image(3, 4, 7, 11);
  const auto hwc = rgb.permute({1, 2, 0}).contiguous();
  FILE* f = std::fopen(path("deep.png").c_str(), "wb");
  ASSERT_NE(f, nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, f);
  png_set_IHDR(png, info, 7, 4, 16, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  std::vector<uint8_t> row(7 * 3 * 2);
  for (int y = 0; y < 4; ++y) {
    for (int i = 0; i < 7 * 3; ++i) {
      const uint8_t v = hwc.data_ptr<uint8_t>()[y * 7 * 3 + i];
      row[2 * i] = v;  // big-endian v * 257
      row[2 * i + 1] = v;
    }
    png_write_row(png, row.data());
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
  EXPECT_TRUE(torch::equal(read_image(path("deep.png")), rgb));
}
