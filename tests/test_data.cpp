// Tests of the dataset layer (src/data): IDX, CIFAR, ImageFolder and Tiny-ImageNet readers on
// small files written to a temp directory, spec parsing and "@N" samples, loading into
// memory, normalization, and the BatchLoader. The real Debian Fashion-MNIST test is skipped
// when the package is not installed.
//
// Each fixture test gets its own temp directory `dir_`; helpers below write the formats.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/io.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "imagenet_layout.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace lpld::data;
using lpld::write_file_atomic;
using lpld::test::expect_throw_with;

namespace {

class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lpld-test-data-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

void write_gz(const std::string& path, const std::string& data) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, data.data(), static_cast<unsigned>(data.size())),
            static_cast<int>(data.size()));
  gzclose(f);
}

// Pixel of image i at (r, c) in the synthetic IDX files.
uint8_t idx_pixel(int i, int r, int c) { return static_cast<uint8_t>(i * 7 + r * 3 + c); }

struct IdxFiles {
  int n = 12, rows = 5, cols = 4;
  uint32_t images_magic = 0x803, labels_magic = 0x801;
  int label_count = -1;   // -1: n
  int bad_label_at = -1;  // write label 10 here
  size_t cut_images = 0;  // bytes to drop from the end of the images file
  bool gz = true;

  std::string images() const {
    std::string s = be32(images_magic) + be32(n) + be32(rows) + be32(cols);
    for (int i = 0; i < n; ++i)
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) s += static_cast<char>(idx_pixel(i, r, c));
    return s.substr(0, s.size() - cut_images);
  }
  std::string labels() const {
    const int m = label_count < 0 ? n : label_count;
    std::string s = be32(labels_magic) + be32(m);
    for (int i = 0; i < m; ++i) s += static_cast<char>(i == bad_label_at ? 10 : i % 10);
    return s;
  }
  void write(const std::string& dir, const std::string& prefix) const {
    const std::string im = dir + "/" + prefix + "-images-idx3-ubyte";
    const std::string lb = dir + "/" + prefix + "-labels-idx1-ubyte";
    if (gz) {
      write_gz(im + ".gz", images());
      write_gz(lb + ".gz", labels());
    } else {
      write_file_atomic(im, images());
      write_file_atomic(lb, labels());
    }
  }
};

// A CIFAR record: label bytes then 3072 image bytes derived from `seed`.
std::string cifar_record(const std::string& label_bytes, int seed) {
  std::string s = label_bytes;
  for (int i = 0; i < 3072; ++i) s += static_cast<char>((seed * 31 + i) & 0xFF);
  return s;
}

torch::Tensor patterned(int64_t c, int64_t h, int64_t w, int seed) {
  return (torch::arange(c * h * w, torch::kInt64).view({c, h, w}) * 13 + seed * 41)
      .remainder(256)
      .to(torch::kUInt8);
}

}  // namespace

// ---- IDX ----

TEST_F(DataTest, IdxGzippedAndRaw) {
  IdxFiles f;
  f.write(dir_.string(), "train");
  IdxFiles raw;
  raw.gz = false;
  raw.n = 3;
  raw.write(dir_.string(), "t10k");

  auto train = open_dataset("mnist:" + dir_.string());
  EXPECT_EQ(train->size(), 12);
  EXPECT_EQ(train->channels(), 1);
  EXPECT_EQ(train->fixed_size(), (std::array<int64_t, 2>{5, 4}));
  EXPECT_EQ(train->num_classes(), 10);
  EXPECT_EQ(train->class_names()[3], "3");
  EXPECT_EQ(train->label(11), 1);
  const auto img = train->image(9);
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{1, 5, 4}));
  EXPECT_EQ(img[0][2][3].item<uint8_t>(), idx_pixel(9, 2, 3));
  EXPECT_TRUE(torch::equal(train->labels(), torch::arange(12, torch::kInt64).remainder(10)));
  EXPECT_EQ(default_image_size(*train), 5);

  auto test = open_dataset("fashion-mnist:" + dir_.string() + ":test");
  EXPECT_EQ(test->size(), 3);
  EXPECT_EQ(test->class_names()[9], "Ankle boot");
  EXPECT_EQ(test->image(2)[0][4][1].item<uint8_t>(), idx_pixel(2, 4, 1));
}

TEST_F(DataTest, IdxErrors) {
  const std::string d = dir_.string();
  const std::string images = d + "/train-images-idx3-ubyte.gz";
  const std::string labels = d + "/train-labels-idx1-ubyte.gz";
  auto open = [&] { open_dataset("mnist:" + d + ":train"); };

  expect_throw_with(open, {d, "not found"});

  IdxFiles magic;
  magic.images_magic = 0x801;
  magic.write(d, "train");
  expect_throw_with(open, {images, "magic"});

  IdxFiles labels_magic;
  labels_magic.labels_magic = 0x803;
  labels_magic.write(d, "train");
  expect_throw_with(open, {labels, "magic"});

  IdxFiles cut;
  cut.cut_images = 5;
  cut.write(d, "train");
  expect_throw_with(open, {images, "truncated"});

  IdxFiles bad_label;
  bad_label.bad_label_at = 4;
  bad_label.write(d, "train");
  expect_throw_with(open, {labels, "out of range"});

  IdxFiles mismatch;
  mismatch.label_count = 11;
  mismatch.write(d, "train");
  expect_throw_with(open, {labels, "11 labels", "12 images"});

  // A gzip file cut short.
  IdxFiles good;
  good.write(d, "train");
  const std::string gz = lpld::read_file(images);
  write_file_atomic(images, gz.substr(0, gz.size() / 2));
  expect_throw_with(open, {images});
}

// ---- CIFAR ----

TEST_F(DataTest, Cifar10) {
  const std::string d = dir_.string();
  for (int b = 1; b <= 5; ++b) {
    std::string s;
    for (int r = 0; r < 3; ++r) s += cifar_record(std::string(1, char((b + r) % 10)), b * 10 + r);
    write_file_atomic(d + "/data_batch_" + std::to_string(b) + ".bin", s);
  }
  write_file_atomic(d + "/test_batch.bin", cifar_record("\x07", 99) + cifar_record("\x02", 98));
  auto train = open_dataset("cifar10:" + d);
  EXPECT_EQ(train->size(), 15);
  EXPECT_EQ(train->channels(), 3);
  EXPECT_EQ(train->fixed_size(), (std::array<int64_t, 2>{32, 32}));
  EXPECT_EQ(train->class_names()[0], "airplane");
  EXPECT_EQ(train->label(4), (2 + 1) % 10);  // batch 2, record 1
  // Plane order: byte 1024 + 32 * 5 + 6 is channel 1 (G), row 5, col 6.
  EXPECT_EQ(train->image(4)[1][5][6].item<uint8_t>(), ((21 * 31 + 1024 + 32 * 5 + 6) & 0xFF));

  std::string names;
  for (int i = 0; i < 10; ++i) names += "class" + std::to_string(i) + "\n";
  write_file_atomic(d + "/batches.meta.txt", names + "\n");
  auto test = open_dataset("cifar10:" + d + ":test");
  EXPECT_EQ(test->size(), 2);
  EXPECT_EQ(test->class_names()[7], "class7");
  EXPECT_TRUE(torch::equal(test->labels(), torch::tensor({7, 2}, torch::kInt64)));

  write_file_atomic(d + "/test_batch.bin", cifar_record("\x07", 1) + "x");
  expect_throw_with([&] { open_dataset("cifar10:" + d + ":test"); },
                    {d + "/test_batch.bin", "truncated"});
  write_file_atomic(d + "/test_batch.bin", cifar_record("\x0a", 1));
  expect_throw_with([&] { open_dataset("cifar10:" + d + ":test"); },
                    {d + "/test_batch.bin", "out of range"});
  fs::remove(d + "/data_batch_3.bin");
  expect_throw_with([&] { open_dataset("cifar10:" + d); }, {"data_batch_3.bin"});
}

TEST_F(DataTest, Cifar100) {
  const std::string d = dir_.string() + "/cifar-100-binary";  // the archive's folder
  fs::create_directories(d);
  std::string s;
  for (int r = 0; r < 4; ++r) {
    s += cifar_record(std::string{char(r), char(90 + r)}, r);  // coarse r, fine 90 + r
  }
  write_file_atomic(d + "/train.bin", s);
  auto train = open_dataset("cifar100:" + dir_.string());
  EXPECT_EQ(train->size(), 4);
  EXPECT_EQ(train->num_classes(), 100);
  EXPECT_EQ(train->class_names()[42], "42");
  EXPECT_TRUE(torch::equal(train->labels(), torch::tensor({90, 91, 92, 93}, torch::kInt64)));
  EXPECT_EQ(train->image(3)[2][0][0].item<uint8_t>(), ((3 * 31 + 2048) & 0xFF));

  write_file_atomic(d + "/test.bin", s.substr(0, s.size() - 1));
  expect_throw_with([&] { open_dataset("cifar100:" + d + ":test"); },
                    {d + "/test.bin", "truncated"});
  write_file_atomic(d + "/test.bin", cifar_record(std::string{char(1), char(100)}, 0));
  expect_throw_with([&] { open_dataset("cifar100:" + d + ":test"); },
                    {d + "/test.bin", "out of range"});
}

// ---- ImageFolder ----

TEST_F(DataTest, ImageFolderMixedFormats) {
  const std::string d = dir_.string();
  const auto cat_png = patterned(3, 6, 8, 1);
  const auto dog_png = patterned(1, 5, 5, 2);
  fs::create_directories(d + "/cat");
  fs::create_directories(d + "/dog");
  write_png(d + "/cat/b.png", cat_png);
  write_file_atomic(d + "/cat/a.JPG", encode_jpeg(patterned(3, 12, 10, 3)));
  write_file_atomic(d + "/cat/notes.txt", "ignored");
  write_png(d + "/dog/x.PNG", dog_png);
  write_file_atomic(d + "/dog/y.jpeg", encode_jpeg(patterned(1, 7, 9, 4)));
  write_file_atomic(d + "/README", "ignored too");

  auto ds = open_dataset("imagefolder:" + d);
  ASSERT_EQ(ds->size(), 4);
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ds->channels(), 3);  // gray images are replicated in a color set
  EXPECT_EQ(ds->fixed_size(), (std::array<int64_t, 2>{0, 0}));
  EXPECT_EQ(default_image_size(*ds), 224);
  EXPECT_EQ(ds->source(0), d + "/cat/a.JPG");  // files sorted by name
  EXPECT_TRUE(torch::equal(ds->image(1), cat_png));
  EXPECT_EQ(ds->image(0).sizes(), (std::vector<int64_t>{3, 12, 10}));
  EXPECT_TRUE(torch::equal(ds->image(2), dog_png.expand({3, 5, 5})));
  EXPECT_TRUE(torch::equal(ds->labels(), torch::tensor({0, 0, 1, 1}, torch::kInt64)));
  EXPECT_EQ(ds->label(3), 1);
  // Sizes differ: loading into memory names an odd file.
  expect_throw_with([&] { load_into_memory(ds, 2); }, {d + "/", "one size"});
  // Normalization of a folder is estimated.
  const auto norm = normalization_for(*ds);
  EXPECT_EQ(norm.mean.size(), 3u);
}

TEST_F(DataTest, ImageFolderSameSizeLoadsIntoMemory) {
  const std::string d = dir_.string();
  // Like the tool's own synthetic images: one PNG per image, all one size.
  std::vector<torch::Tensor> expected;
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 40; ++i) {
      auto img = patterned(1, 12, 12, c * 100 + i);
      write_png(fmt::format("{}/class{}/img{:03d}.png", d, c, i), img);
      expected.push_back(img);
    }
  }
  auto ds = open_dataset("imagefolder:" + d);
  EXPECT_EQ(ds->channels(), 1);
  EXPECT_EQ(ds->fixed_size(), (std::array<int64_t, 2>{12, 12}));
  EXPECT_EQ(default_image_size(*ds), 12);
  auto mem = load_into_memory(ds, 2);
  ASSERT_EQ(mem->images().sizes(), (std::vector<int64_t>{120, 1, 12, 12}));
  EXPECT_TRUE(torch::equal(mem->images(), torch::stack(expected)));
  EXPECT_TRUE(torch::equal(mem->labels(), ds->labels()));
  EXPECT_EQ(mem->class_names(), ds->class_names());
  EXPECT_EQ(load_into_memory(mem), mem);  // already in memory

  // Constant images: 0 and 255 halves give mean 0.5, std 0.5.
  const std::string e = path("const");
  write_png(e + "/a/0.png", torch::zeros({3, 4, 4}, torch::kUInt8));
  write_png(e + "/a/1.png", torch::full({3, 4, 4}, 255, torch::kUInt8));
  const auto norm = normalization_for(*open_dataset("imagefolder:" + e));
  ASSERT_EQ(norm.mean.size(), 3u);
  EXPECT_NEAR(norm.mean[1], 0.5, 1e-6);
  EXPECT_NEAR(norm.std[2], 0.5, 1e-6);
}

TEST_F(DataTest, ImageFolderErrors) {
  const std::string d = dir_.string();
  expect_throw_with([&] { open_dataset("imagefolder:" + d + "/nope"); },
                    {d + "/nope", "not found"});
  expect_throw_with([&] { open_dataset("imagefolder:" + d); }, {d, "no class folders"});
  fs::create_directories(d + "/a");
  fs::create_directories(d + "/b");
  write_png(d + "/a/1.png", patterned(3, 4, 4, 0));
  write_file_atomic(d + "/b/readme.txt", "no images here");
  expect_throw_with([&] { open_dataset("imagefolder:" + d); }, {d + "/b", "no images"});
  write_file_atomic(d + "/b/broken.png", encode_png(patterned(3, 4, 4, 1)).substr(0, 30));
  expect_throw_with(
      [&] {
        auto ds = open_dataset("imagefolder:" + d);
        load_into_memory(ds);
      },
      {d + "/b/broken.png"});
}

// ---- Tiny-ImageNet ----

TEST_F(DataTest, TinyImageNet) {
  const std::string d = dir_.string();
  const std::vector<std::string> wnids = {"n02", "n01", "n03"};
  for (size_t c = 0; c < wnids.size(); ++c) {
    for (int i = 0; i < 2; ++i) {
      write_file_atomic(fmt::format("{}/train/{}/images/{}_{}.JPEG", d, wnids[c], wnids[c], i),
                        encode_jpeg(patterned(c == 2 && i == 0 ? 1 : 3, 64, 64, i)));
    }
    write_file_atomic(fmt::format("{}/train/{}/{}_boxes.txt", d, wnids[c], wnids[c]), "x\n");
  }
  std::string ann;
  for (int i = 0; i < 4; ++i) {
    write_file_atomic(fmt::format("{}/val/images/val_{}.JPEG", d, i),
                      encode_jpeg(patterned(3, 64, 64, 10 + i)));
    ann += fmt::format("val_{}.JPEG\t{}\t0\t0\t10\t10\n", i, wnids[i % 3]);
  }
  write_file_atomic(d + "/val/val_annotations.txt", ann);

  auto train = open_dataset("tiny-imagenet:" + d + ":train");
  EXPECT_EQ(train->size(), 6);
  EXPECT_EQ(train->class_names(), (std::vector<std::string>{"n01", "n02", "n03"}));
  EXPECT_EQ(train->channels(), 3);
  EXPECT_EQ(train->fixed_size(), (std::array<int64_t, 2>{64, 64}));
  EXPECT_EQ(train->image(4).sizes(), (std::vector<int64_t>{3, 64, 64}));  // a gray JPEG
  EXPECT_TRUE(torch::equal(train->labels(), torch::tensor({0, 0, 1, 1, 2, 2}, torch::kInt64)));
  const auto norm = normalization_for(*train);
  EXPECT_FLOAT_EQ(norm.mean[0], 0.485f);

  auto val = open_dataset("tiny-imagenet:" + d + ":val");
  EXPECT_EQ(val->size(), 4);
  // n02 n01 n03 n02 -> 1 0 2 1
  EXPECT_TRUE(torch::equal(val->labels(), torch::tensor({1, 0, 2, 1}, torch::kInt64)));
  EXPECT_EQ(load_into_memory(val)->images().sizes(), (std::vector<int64_t>{4, 3, 64, 64}));

  // wnids.txt decides the class order.
  write_file_atomic(d + "/wnids.txt", "n03\nn02\nn01\n");
  auto val2 = open_dataset("tiny-imagenet:" + d + ":val");
  EXPECT_TRUE(torch::equal(val2->labels(), torch::tensor({1, 2, 0, 1}, torch::kInt64)));
  fs::remove(d + "/wnids.txt");

  write_file_atomic(d + "/val/val_annotations.txt", ann + "val_0.JPEG\tn99\t0\t0\t1\t1\n");
  expect_throw_with([&] { open_dataset("tiny-imagenet:" + d + ":val"); },
                    {"val_annotations.txt", "line 5", "n99"});
  write_file_atomic(d + "/val/val_annotations.txt", ann + "val_7.JPEG\tn01\t0\t0\t1\t1\n");
  expect_throw_with([&] { open_dataset("tiny-imagenet:" + d + ":val"); }, {"val_7.JPEG"});
  EXPECT_THROW(open_dataset("tiny-imagenet:" + d + ":test"), std::invalid_argument);
}

// ---- ImageNet's own layout ----

TEST_F(DataTest, ImageNetFlatValLabelledByLocValSolutionAndClassesBySortedWnid) {
  const lpld::test::ImageNetLayout net;
  const std::string d = path("imagenet");
  net.write(d);
  auto train = open_dataset("imagenet:" + d + ":train");
  EXPECT_EQ(train->class_names(), net.wnids);
  EXPECT_EQ(train->size(), 6);
  EXPECT_EQ(train->channels(), 3);
  EXPECT_EQ(train->fixed_size(), (std::array<int64_t, 2>{0, 0}));  // sizes vary
  EXPECT_TRUE(torch::equal(train->labels(), torch::tensor({0, 0, 1, 1, 2, 2}, torch::kInt64)));
  EXPECT_FLOAT_EQ(normalization_for(*train).mean[0], 0.485f);  // ImageNet's, not estimated
  EXPECT_EQ(open_dataset("imagenet:" + d)->size(), 6);         // train by default

  auto val = open_dataset("imagenet:" + d + ":val");
  ASSERT_EQ(val->size(), net.val_images);
  for (int i = 0; i < net.val_images; ++i) {  // sorted file names: image i is the i-th
    EXPECT_EQ(fs::path(val->source(i)).stem().string(), net.val_name(i));
    EXPECT_EQ(val->label(i), net.val_class(i)) << i;
  }
  EXPECT_EQ(val->image(2).sizes(), (std::vector<int64_t>{3, 44, 44}));

  // The same images sorted into class folders: each file keeps its label.
  const std::string sorted = path("sorted");
  net.write(sorted, /*sorted_val=*/true);
  auto val2 = open_dataset("imagenet:" + sorted + ":val");
  ASSERT_EQ(val2->size(), net.val_images);
  for (int64_t k = 0; k < val2->size(); ++k) {
    const int i = std::stoi(fs::path(val2->source(k)).stem().string().substr(15)) - 1;
    EXPECT_EQ(val2->label(k), net.val_class(i));
  }

  // The Kaggle release: images under ILSVRC/Data/CLS-LOC, the labels at the top.
  const std::string kaggle = path("kaggle");
  fs::create_directories(kaggle + "/ILSVRC/Data");
  fs::rename(d + "/train", d + "/ILSVRC-train");
  fs::create_directories(kaggle + "/ILSVRC/Data/CLS-LOC");
  fs::rename(d + "/ILSVRC-train", kaggle + "/ILSVRC/Data/CLS-LOC/train");
  fs::copy(d + "/val", kaggle + "/ILSVRC/Data/CLS-LOC/val");
  fs::copy(d + "/LOC_val_solution.csv", kaggle + "/LOC_val_solution.csv");
  EXPECT_TRUE(torch::equal(open_dataset("imagenet:" + kaggle + ":val")->labels(), val->labels()));
  EXPECT_EQ(open_dataset("imagenet:" + kaggle + ":train")->size(), 6);
}

// ImageNet-21K's layout is the same with more than 10,000 classes (winter 2021: 10,450; fall
// 2011: 21,841): every class indexed by sorted wnid, a flat val labelled by the list.
TEST_F(DataTest, ImageNet21kSizedClassListsIndexBySortedWnid) {
  const std::string d = path("in21k");
  const int classes = 10450;
  const std::string jpeg = encode_jpeg(torch::full({3, 8, 8}, 128, torch::kUInt8));
  std::vector<std::string> wnids;
  for (int c = 0; c < classes; ++c) wnids.push_back(fmt::format("n{:08d}", 9000000 - 37 * c));
  for (const auto& w : wnids) {  // written in descending order: the index must sort them
    fs::create_directories(d + "/train/" + w);
    std::ofstream(d + "/train/" + w + "/" + w + "_0.JPEG", std::ios::binary) << jpeg;
  }
  fs::create_directories(d + "/val");
  std::string list;
  for (int i = 0; i < 3; ++i) {
    const std::string name = fmt::format("val_{}.JPEG", i);
    std::ofstream(d + "/val/" + name, std::ios::binary) << jpeg;
    list += name + " " + wnids[static_cast<size_t>(i * 5000)] + "\n";  // classes 0, 5000, 10000
  }
  write_file_atomic(d + "/val_labels.txt", list);
  const auto train = open_dataset("imagenet:" + d + ":train");
  EXPECT_EQ(train->num_classes(), classes);
  EXPECT_EQ(train->class_names().front(), wnids.back());  // the smallest wnid is class 0
  const auto val = open_dataset("imagenet:" + d + ":val");
  ASSERT_EQ(val->size(), 3);
  for (int i = 0; i < 3; ++i)  // wnid i*5000 in descending order sits at index C-1-i*5000
    EXPECT_EQ(val->label(i), classes - 1 - i * 5000);
}

TEST_F(DataTest, ImageNetLabelGapsAreErrorsNamingTheFile) {
  const lpld::test::ImageNetLayout net;
  const std::string d = path("imagenet");
  net.write(d);
  const std::string csv = d + "/LOC_val_solution.csv";
  const std::string good = lpld::read_file(csv);
  const auto open_val = [&] { open_dataset("imagenet:" + d + ":val"); };
  // an image without a label
  write_file_atomic(csv, good.substr(0, good.rfind("ILSVRC2012_val_00000006")));
  expect_throw_with(open_val, {"ILSVRC2012_val_00000006.JPEG", "no label", "LOC_val_solution.csv"});
  // a label of an unknown class
  write_file_atomic(csv, good.substr(0, good.rfind("ILSVRC2012_val_00000006")) +
                             "ILSVRC2012_val_00000006,n99999999 1 1 2 2\n");
  expect_throw_with(open_val, {"LOC_val_solution.csv", "line 7", "n99999999"});
  // a label without its image
  write_file_atomic(csv, good + "ILSVRC2012_val_00000009,n01440764 1 1 2 2\n");
  expect_throw_with(open_val, {"ILSVRC2012_val_00000009.JPEG", "missing", "line 8"});
  // a line that is not a label, a file labelled twice
  write_file_atomic(csv, good + "ILSVRC2012_val_00000009\n");
  expect_throw_with(open_val, {"LOC_val_solution.csv", "line 8"});
  write_file_atomic(csv, good + "ILSVRC2012_val_00000001,n01440764\n");
  expect_throw_with(open_val, {"LOC_val_solution.csv", "labelled twice"});
  // the plain list format
  fs::remove(csv);
  expect_throw_with(open_val, {"LOC_val_solution.csv", "not found"});
  std::string list;
  for (int i = 0; i < net.val_images; ++i)
    list += net.val_name(i) + ".JPEG " + net.wnids[static_cast<size_t>(net.val_class(i))] + "\n";
  write_file_atomic(d + "/val_labels.txt", list);
  auto val = open_dataset("imagenet:" + d + ":val");
  for (int i = 0; i < net.val_images; ++i) EXPECT_EQ(val->label(i), net.val_class(i));
  // a class folder in val/ that train does not have
  fs::create_directories(d + "/val/n00000001");
  expect_throw_with(open_val, {"n00000001", "not one of the classes"});
  EXPECT_THROW(open_dataset("imagenet:" + d + ":test"), std::invalid_argument);
  expect_throw_with([&] { open_dataset("imagenet:" + path("none") + ":val"); }, {"none"});
}

// ---- Specs, samples ----

TEST_F(DataTest, BadSpecsAreInvalidArguments) {
  IdxFiles f;
  f.write(dir_.string(), "train");
  const std::string d = dir_.string();
  expect_throw_with<std::invalid_argument>([&] { open_dataset("svhn:" + d); },
                                           {"svhn", "fashion-mnist", "tiny-imagenet"});
  EXPECT_THROW(open_dataset(""), std::invalid_argument);
  EXPECT_THROW(open_dataset("mnist"), std::invalid_argument);
  EXPECT_THROW(open_dataset("mnist:"), std::invalid_argument);
  EXPECT_THROW(open_dataset("mnist:" + d + ":val"), std::invalid_argument);
  EXPECT_THROW(open_dataset("cifar10:" + d + ":validation"), std::invalid_argument);
  EXPECT_THROW(open_dataset("fashion-mnist:" + d + ":dev"), std::invalid_argument);
  EXPECT_THROW(open_dataset("imagefolder:" + d + ":train"), std::invalid_argument);
  EXPECT_THROW(open_dataset("mnist:" + d + "@0"), std::invalid_argument);
  EXPECT_THROW(open_dataset("mnist:" + d + "@-2"), std::invalid_argument);
  EXPECT_THROW(open_dataset("mnist:" + d + "@abc"), std::invalid_argument);
  EXPECT_THROW(open_dataset("mnist:" + d + "@"), std::invalid_argument);
  EXPECT_THROW(open_dataset("mnist:" + d + "@13"), std::invalid_argument);  // only 12
  EXPECT_THROW(TensorDataset(torch::zeros({2, 1, 3, 3}, torch::kFloat),
                             torch::zeros({2}, torch::kInt64), {"a"}, "t"),
               std::invalid_argument);
  EXPECT_THROW(TensorDataset(torch::zeros({2, 1, 3, 3}, torch::kUInt8),
                             torch::zeros({3}, torch::kInt64), {"a"}, "t"),
               std::invalid_argument);
  EXPECT_THROW(TensorDataset(torch::zeros({2, 1, 3, 3}, torch::kUInt8),
                             torch::tensor({0, 2}, torch::kInt64), {"a", "b"}, "t"),
               std::invalid_argument);
}

TEST_F(DataTest, SampleIsFixedAndSorted) {
  IdxFiles f;
  f.n = 50;
  f.write(dir_.string(), "train");
  const std::string spec = "mnist:" + dir_.string() + ":train@7";
  auto a = open_dataset(spec);
  auto b = open_dataset(spec);
  EXPECT_EQ(a->size(), 7);
  EXPECT_EQ(a->spec(), spec);
  auto am = std::dynamic_pointer_cast<TensorDataset>(a);
  ASSERT_NE(am, nullptr);  // a sample of an in-memory set stays in memory
  EXPECT_TRUE(torch::equal(am->images(), std::dynamic_pointer_cast<TensorDataset>(b)->images()));
  EXPECT_TRUE(torch::equal(a->labels(), b->labels()));
  // Sorted ascending: recover each image's index from its first pixel (7 i mod 256, unique).
  int prev = -1;
  for (int64_t i = 0; i < a->size(); ++i) {
    const int v = am->images()[i][0][0][0].item<uint8_t>();
    int index = -1;
    for (int k = 0; k < 50; ++k)
      if (idx_pixel(k, 0, 0) == v) index = k;
    EXPECT_GT(index, prev);
    EXPECT_EQ(a->label(i), index % 10);
    prev = index;
  }

  // A streaming sample stays streaming and keeps file names.
  for (int i = 0; i < 6; ++i)
    write_png(path(fmt::format("f/c{}/{}.png", i % 2, i)), patterned(3, 4, 4, i));
  auto s = open_dataset("imagefolder:" + path("f") + "@3");
  EXPECT_EQ(s->size(), 3);
  EXPECT_EQ(std::dynamic_pointer_cast<TensorDataset>(s), nullptr);
  EXPECT_NE(s->source(0).find(".png"), std::string::npos);
  EXPECT_EQ(load_into_memory(s)->size(), 3);
}

TEST(DataFashionMnist, DebianTestSplit) {
  if (!fs::exists(kDebianFashionMnistDir)) GTEST_SKIP() << kDebianFashionMnistDir << " absent";
  auto ds = open_dataset("fashion-mnist:test");
  EXPECT_EQ(ds->size(), 10000);
  EXPECT_EQ(ds->image(0).sizes(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(ds->num_classes(), 10);
  EXPECT_EQ(ds->class_names()[0], "T-shirt/top");
  EXPECT_TRUE(torch::equal(torch::bincount(ds->labels()), torch::full({10}, 1000, torch::kInt64)));
  const auto norm = normalization_for(*ds);
  EXPECT_FLOAT_EQ(norm.mean[0], 0.2860f);
  EXPECT_EQ(open_dataset("fashion-mnist:test@100")->size(), 100);
}

// ---- BatchLoader ----

namespace {

// 50 images [1, 2, 2] filled with i, label i % 10.
std::shared_ptr<TensorDataset> counting_dataset(int64_t n = 50) {
  auto images = torch::arange(n, torch::kInt64)
                    .to(torch::kUInt8)
                    .view({n, 1, 1, 1})
                    .expand({n, 1, 2, 2})
                    .contiguous();
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back(std::to_string(i));
  return std::make_shared<TensorDataset>(images, torch::arange(n, torch::kInt64).remainder(10),
                                         names, "counting");
}

std::vector<std::vector<int64_t>> shuffled_batches(int64_t n, int64_t batch) {
  auto order = lpld::Rng(3).permutation(n);
  std::vector<std::vector<int64_t>> out;
  for (int64_t i = 0; i < n; i += batch) {
    out.emplace_back(order.begin() + i, order.begin() + std::min(n, i + batch));
  }
  return out;
}

}  // namespace

TEST(BatchLoader, DeliversAllBatchesInOrder) {
  auto ds = counting_dataset();
  const auto batches = shuffled_batches(50, 7);
  for (int workers : {0, 1, 2}) {
    // The transform returns [pixel value, stream position] so both can be checked.
    BatchLoader loader(
        ds, batches,
        [](const torch::Tensor& img, int64_t pos) {
          if (pos % 5 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          return torch::tensor({static_cast<int64_t>(img[0][0][0].item<uint8_t>()), pos});
        },
        LoaderOptions{workers, 2});
    int64_t position = 0;
    for (size_t b = 0; b < batches.size(); ++b) {
      auto batch = loader.next();
      ASSERT_TRUE(batch.has_value());
      EXPECT_EQ(batch->indices, batches[b]);
      ASSERT_EQ(batch->images.size(0), static_cast<int64_t>(batches[b].size()));
      for (size_t j = 0; j < batches[b].size(); ++j) {
        const int64_t index = batches[b][j];
        EXPECT_EQ(batch->images[j][0].item<int64_t>(), index);
        EXPECT_EQ(batch->images[j][1].item<int64_t>(), position++);
        EXPECT_EQ(batch->labels[j].item<int64_t>(), index % 10);
      }
    }
    EXPECT_FALSE(loader.next().has_value());
    EXPECT_FALSE(loader.next().has_value());
  }
}

TEST(BatchLoader, PropagatesTransformErrors) {
  auto ds = counting_dataset();
  BatchLoader loader(
      ds, shuffled_batches(50, 5),
      [](const torch::Tensor& img, int64_t pos) {
        if (pos == 23) throw std::runtime_error("transform failed at 23");
        return img;
      },
      LoaderOptions{2, 3});
  for (int b = 0; b < 4; ++b) ASSERT_TRUE(loader.next().has_value());  // positions 0..19
  expect_throw_with([&] { loader.next(); }, {"transform failed at 23"});
  EXPECT_THROW(loader.next(), std::runtime_error);  // stays failed
}

// A hang fails it through CTest's timeout (no wall-clock bound here: issue "honest tests").
TEST(BatchLoader, EarlyDestructionDoesNotHang) {
  auto ds = counting_dataset();
  auto slow = [](const torch::Tensor& img, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return img;
  };
  {
    BatchLoader loader(ds, shuffled_batches(50, 5), slow, LoaderOptions{2, 2});
    ASSERT_TRUE(loader.next().has_value());
  }
  { BatchLoader loader(ds, shuffled_batches(50, 5), slow, LoaderOptions{2, 2}); }
  {
    // Workers blocked on a full prefetch window while nobody consumes.
    BatchLoader loader(ds, shuffled_batches(50, 1), nullptr, LoaderOptions{2, 1});
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST(BatchLoader, RejectsBadBatches) {
  auto ds = counting_dataset();
  EXPECT_THROW(BatchLoader(ds, {{1, 2}, {}}, nullptr), std::invalid_argument);
  EXPECT_THROW(BatchLoader(ds, {{1, 50}}, nullptr), std::invalid_argument);
}
