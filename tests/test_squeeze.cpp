// Squeeze: exact class statistics and a short teacher training that learns.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/io.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "engine/evaluate.h"
#include "fixtures.h"
#include "imagenet_layout.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "squeeze/class_stats.h"
#include "squeeze/squeeze.h"
#include "test_util.h"

using namespace lpld;

TEST(ClassStats, EqualDirectPerClassComputation) {
  torch::manual_seed(0);
  const int64_t n = 40, classes = 3;
  auto images = torch::randint(0, 256, {n, 1, 12, 12}, torch::kUInt8);
  auto labels = torch::randint(0, classes, {n}, torch::kInt64);
  labels.index_put_({torch::indexing::Slice(0, 3)}, torch::arange(3));  // every class present
  auto ds = std::make_shared<data::TensorDataset>(images, labels,
                                                  std::vector<std::string>{"a", "b", "c"}, "toy");
  auto model = models::make_model({"convnet-d2-w6", classes, 1, 12});
  model->eval();
  data::Normalization norm{{0.5f}, {0.25f}};
  squeeze::ClassStatsOptions opt;
  opt.batch_size = 7;  // batches cut across classes
  opt.image_size = 12;
  auto stats = squeeze::compute_class_stats(*model, ds, norm, opt, torch::kCPU, Progress::null());
  // direct: one forward of everything, BN inputs per class
  torch::NoGradGuard g;
  auto x = (images.to(torch::kFloat32) / 255 - 0.5) / 0.25;
  models::BnCapture cap(*model);
  model->forward(x);
  auto bns = model->batchnorms();
  for (size_t l = 0; l < bns.size(); ++l) {
    for (int64_t c = 0; c < classes; ++c) {
      auto xc = cap.inputs()[l].index({labels == c}).to(torch::kFloat64);
      auto mean = xc.mean({0, 2, 3});
      auto var = xc.var({0, 2, 3}, /*unbiased=*/false);
      EXPECT_TRUE(
          torch::allclose(stats.mean[bns[l].first][c].to(torch::kFloat64), mean, 1e-4, 1e-5));
      EXPECT_TRUE(torch::allclose(stats.var[bns[l].first][c].to(torch::kFloat64), var, 1e-4, 1e-5));
    }
  }
  EXPECT_EQ(stats.count.sum().item<int64_t>(), n);
}

TEST(Squeeze, ShortRunOnFashionMnistSubsetLearns) {
  if (!test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  test::TempDir dir;
  squeeze::SqueezeConfig c;
  c.data = "fashion-mnist:train@3000";
  c.val = "fashion-mnist:test@1000";
  c.arch = "convnet-d3-w16";
  c.epochs = 3;
  c.batch_size = 64;
  c.out = dir.path("teacher.safetensors");
  auto r = squeeze::squeeze(c, Progress::null());
  EXPECT_GT(r.top1, 60.0);  // chance is 10%
  auto ck = models::load_checkpoint(c.out, torch::kCPU);
  EXPECT_EQ(ck.meta.num_classes, 10);
  EXPECT_EQ(ck.meta.class_names[0], "T-shirt/top");
  EXPECT_EQ(ck.class_stats.mean.size(), 3u);
  EXPECT_EQ(ck.class_stats.count.sum().item<int64_t>(), 3000);
  EXPECT_EQ(ck.meta.info["top1"].get<double>(), r.top1);
}

TEST(Squeeze, BadConfigNamesTheOption) {
  squeeze::SqueezeConfig c;
  try {
    c.validate();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--out"), std::string::npos);
  }
  c.out = "x";
  c.lr = -1;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  // nothing is trained at --epochs 0: a training option would be silently ignored
  c.lr = 0.3;
  c.epochs = 0;
  c.init = "teacher.safetensors";
  test::expect_throw_with<std::invalid_argument>([&] { squeeze::squeeze(c, Progress::null()); },
                                                 {"--lr", "--epochs 0"});
}

// The automatic teacher recipe follows the data (bench/teacher_recipes_findings.md): small for
// grey images up to 32 px, the authors' recipe for colour ones; options a user set win.
TEST(Squeeze, AutoRecipeFollowsTheDataAndKeepsWhatTheUserSet) {
  squeeze::SqueezeConfig c;
  EXPECT_EQ(c.resolved(28, 1).recipe, "small");
  EXPECT_EQ(c.resolved(28, 1).batch_size, 64);
  const auto colour = c.resolved(32, 3);
  EXPECT_EQ(colour.recipe, "official");
  EXPECT_EQ(colour.batch_size, 256);
  EXPECT_EQ(colour.epochs, 15);
  EXPECT_DOUBLE_EQ(colour.crop_scale_min, 0.5);
  EXPECT_EQ(c.resolved(64, 3).recipe, "tiny");
  EXPECT_EQ(c.resolved(224, 3).recipe, "imagenet1k");
  c.epochs = 3;
  std::string note;
  const auto set = c.resolved(32, 3, &note);
  EXPECT_EQ(set.epochs, 3);
  EXPECT_EQ(set.batch_size, 256);
  EXPECT_NE(note.find("epochs 3"), std::string::npos) << note;
  c.recipe = "small";
  EXPECT_EQ(c.resolved(32, 3).batch_size, 64);  // a named recipe is kept
}

TEST(Squeeze, StreamsImageFoldersOfVaryingSize) {
  // Images of different sizes are not loaded into memory: decoding threads crop them.
  test::TempDir dir;
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 12; ++i) {
      const int64_t h = 16 + (i % 3) * 4, w = 16 + (i % 2) * 6;
      auto img = torch::full({3, h, w}, c == 0 ? 40 : 220, torch::kUInt8);
      img += torch::randint(0, 20, {3, h, w}, torch::kUInt8);
      data::write_png(dir.path("data/c" + std::to_string(c) + "/" + std::to_string(i) + ".png"),
                      img);
    }
  squeeze::SqueezeConfig c;
  c.data = "imagefolder:" + dir.path("data");
  c.val = c.data;
  c.arch = "convnet-d2-w4";
  c.image_size = 16;
  c.epochs = 4;
  c.batch_size = 8;
  c.out = dir.path("t.safetensors");
  auto r = squeeze::squeeze(c, Progress::null());
  EXPECT_GT(r.top1, 90.0);  // bright vs dark
  auto ck = models::load_checkpoint(c.out, torch::kCPU);
  EXPECT_EQ(ck.meta.image_size, 16);
  EXPECT_EQ(ck.meta.channels, 3);
  EXPECT_EQ(ck.class_stats.count.sum().item<int64_t>(), 24);
}

namespace {
// Names the tasks a run starts and counts each one's updates; throws when `stop_at` starts
// (a kill, for a library call).
struct TaskRecorder : Progress {
  std::string stop_at, task;
  std::vector<std::string> started;
  std::map<std::string, int64_t> updates;
  void start(const std::string& label, int64_t, const std::string&) override {
    if (label == stop_at) throw std::runtime_error("stopped at " + label);
    started.push_back(task = label);
  }
  void update(int64_t, const std::string&) override { ++updates[task]; }
  void finish(const std::string&) override {}
  void message(const std::string&) override {}
};
}  // namespace

// Training is saved after its last epoch, and the evaluation before the class-statistics pass:
// a run stopped in the evaluation or in the pass resumes without training again (it retrained
// the last epoch before), and stopped in the pass without evaluating again; either way it
// writes the teacher an uninterrupted run writes.
// An ImageNet val labelled by LOC_val_solution.csv and the same images in class folders are
// the same evaluation (issue: ImageNet-1K as a user meets it).
TEST(ImageNet, FlatLabelledValAndClassFolderValGiveTheSameTop1) {
  test::TempDir dir;
  test::ImageNetLayout net;
  net.val_images = 24;
  net.write(dir.path("flat"));
  net.write(dir.path("sorted"), /*sorted_val=*/true);
  torch::manual_seed(5);
  auto model = models::make_model({"convnet-d2-w8", 3, 3, 32});
  model->eval();
  const auto flat = data::open_dataset("imagenet:" + dir.path("flat") + ":val");
  const auto sorted = data::open_dataset("imagenet:" + dir.path("sorted") + ":val");
  const auto norm = data::normalization_for(*flat);
  const auto a = engine::evaluate(*model, flat, norm, 32, torch::kCPU, Progress::null(), 1);
  const auto b = engine::evaluate(*model, sorted, norm, 32, torch::kCPU, Progress::null(), 1);
  EXPECT_EQ(a.images, 24);
  EXPECT_DOUBLE_EQ(a.top1, b.top1);
  // both evaluate every image against its own label (tests/test_data.cpp checks them per file)
  EXPECT_TRUE(torch::equal(std::get<0>(torch::sort(flat->labels())),
                           std::get<0>(torch::sort(sorted->labels()))));
}

TEST(Squeeze, StoppedAfterTrainingResumesWithoutTrainingAgain) {
  test::TempDir dir;
  test::make_toy_folder(dir.path("toy"), 20, 10);
  squeeze::SqueezeConfig c;
  c.data = "imagefolder:" + dir.path("toy/train");
  c.val = "imagefolder:" + dir.path("toy/val");
  c.arch = "convnet-d2-w4";
  c.epochs = 3;
  c.batch_size = 16;
  c.out = dir.path("t.safetensors");
  const auto whole = squeeze::squeeze(c, Progress::null());
  const std::string whole_bytes = read_file(c.out);
  for (const std::string stop_at : {"eval", "class stats"}) {
    SCOPED_TRACE("stopped at " + stop_at);
    std::filesystem::remove(c.out);
    TaskRecorder stopped;
    stopped.stop_at = stop_at;
    EXPECT_THROW(squeeze::squeeze(c, stopped), std::runtime_error);
    ASSERT_TRUE(std::filesystem::exists(c.out + ".state"));
    TaskRecorder resumed;
    const auto again = squeeze::squeeze(c, resumed);
    EXPECT_EQ(resumed.updates["squeeze train"], 0) << "the resumed run trained again";
    const bool evaluated = std::count(resumed.started.begin(), resumed.started.end(), "eval") > 0;
    EXPECT_EQ(evaluated, stop_at == "eval");
    EXPECT_EQ(resumed.started.back(), "class stats");
    EXPECT_EQ(again.top1, whole.top1);
    EXPECT_EQ(again.top5, whole.top5);
    EXPECT_TRUE(read_file(c.out) == whole_bytes) << "the resumed teacher differs";
    EXPECT_FALSE(std::filesystem::exists(c.out + ".state"));
  }
}
