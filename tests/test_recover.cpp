// Recover: the BN-matching loss, gradients, learning on a trained teacher, class/mixed
// batching, determinism, split runs, resume, and class packing.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/io.h"
#include "fixtures.h"
#include "labels/image_set.h"
#include "models/checkpoint.h"
#include "models/registry.h"
#include "recover/bn_loss.h"
#include "recover/recover.h"
#include "recover/stall.h"
#include "squeeze/squeeze.h"

using namespace lpld;
namespace fs = std::filesystem;

TEST(BnLoss, EqualsDirectComputationPerGroup) {
  torch::manual_seed(1);
  std::vector<torch::Tensor> inputs = {torch::randn({6, 4, 5, 5}), torch::randn({6, 3, 2, 2})};
  std::vector<torch::Tensor> tm = {torch::randn({2, 4}), torch::randn({2, 3})};
  std::vector<torch::Tensor> tv = {torch::rand({2, 4}), torch::rand({2, 3})};
  auto loss = recover::bn_matching_loss(inputs, 2, tm, tv, 10.0);
  ASSERT_EQ(loss.sizes(), (std::vector<int64_t>{2}));
  for (int64_t k = 0; k < 2; ++k) {
    double expect = 0;
    for (size_t l = 0; l < 2; ++l) {
      auto g = inputs[l].narrow(0, k * 3, 3);
      auto mean = g.mean({0, 2, 3});
      auto var = g.var({0, 2, 3}, /*unbiased=*/false);
      const double term =
          (mean - tm[l][k]).norm().item<double>() + (var - tv[l][k]).norm().item<double>();
      expect += (l == 0 ? 10.0 : 1.0) * term;
    }
    EXPECT_NEAR(loss[k].item<double>(), expect, 1e-4);
  }
}

// The TV-L2 prior of DeepInversion / SRe2L, per group, by loops over pixels.
TEST(BnLoss, TvL2PriorMatchesTheNeighbourDifferencesByLoops) {
  torch::manual_seed(3);
  auto x = torch::randn({4, 2, 5, 6}, torch::kFloat64);  // 2 groups of 2 images
  auto prior = recover::tv_l2_prior(x, 2);
  ASSERT_EQ(prior.sizes(), (std::vector<int64_t>{2}));
  auto a = x.accessor<double, 4>();
  for (int64_t k = 0; k < 2; ++k) {
    double sq[4] = {0, 0, 0, 0};  // right, down, down-left, down-right
    for (int64_t n = 2 * k; n < 2 * k + 2; ++n)
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t i = 0; i < 5; ++i)
          for (int64_t j = 0; j < 6; ++j) {
            auto add = [&](int q, int64_t i2, int64_t j2) {
              if (i2 < 5 && j2 >= 0 && j2 < 6) {
                const double d = a[n][c][i][j] - a[n][c][i2][j2];
                sq[q] += d * d;
              }
            };
            add(0, i, j + 1);
            add(1, i + 1, j);
            add(2, i + 1, j - 1);
            add(3, i + 1, j + 1);
          }
    const double expect = std::sqrt(sq[0]) + std::sqrt(sq[1]) + std::sqrt(sq[2]) + std::sqrt(sq[3]);
    EXPECT_NEAR(prior[k].item<double>(), expect, 1e-9);
  }
}

TEST(BnLoss, GradientsReachImagesNotTeacherFiniteDifferences) {
  torch::manual_seed(2);
  auto net = models::make_model({"convnet-d1-w3", 3, 1, 8});
  net->to(torch::kFloat64);
  net->eval();
  for (auto& p : net->parameters()) p.set_requires_grad(false);
  {  // non-trivial running statistics
    torch::NoGradGuard g;
    for (auto& b : net->named_buffers())
      if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
  }
  auto tm = std::vector<torch::Tensor>{torch::randn({1, 3}, torch::kFloat64)};
  auto tv = std::vector<torch::Tensor>{torch::rand({1, 3}, torch::kFloat64) + 0.5};
  auto target = torch::tensor({1, 1, 1, 1}, torch::kInt64);
  auto loss_of = [&](const torch::Tensor& x) {
    models::BnCapture cap(*net);
    auto ce = torch::cross_entropy_loss(net->forward(x), target);
    return ce + 0.05 * recover::bn_matching_loss(cap.inputs(), 1, tm, tv, 10.0).sum();
  };
  auto x = torch::randn({4, 1, 8, 8}, torch::kFloat64).set_requires_grad(true);
  loss_of(x).backward();
  auto grad = x.grad().clone();
  for (auto& p : net->parameters()) EXPECT_FALSE(p.grad().defined());
  torch::NoGradGuard g;
  const double eps = 1e-6;
  for (int64_t i : {0, 17, 100, 200, 255}) {
    auto xp = x.detach().clone(), xm = x.detach().clone();
    xp.view(-1)[i] += eps;
    xm.view(-1)[i] -= eps;
    const double fd = (loss_of(xp).item<double>() - loss_of(xm).item<double>()) / (2 * eps);
    EXPECT_NEAR(grad.view(-1)[i].item<double>(), fd, 1e-6 + 1e-4 * std::abs(fd)) << i;
  }
}

TEST(Recover, UnitsHoldOneClassOrOneOfEach) {
  recover::RecoverConfig c;
  c.ipc = 5;
  c.batch_size = 2;
  auto units = recover::plan_units(c, 10, {3, 4});
  ASSERT_EQ(units.size(), 6u);  // 3 chunks (2, 2, 1) per class
  for (const auto& u : units) EXPECT_TRUE(u.label == 3 || u.label == 4);
  EXPECT_EQ(units[2].count, 1);
  c.mode = recover::RecoverMode::mixed;
  c.batch_size = 0;
  const std::vector<int64_t> all = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto mixed = recover::plan_units(c, 10, all);
  ASSERT_EQ(mixed.size(), 5u);  // ipc batches of one image per class
  for (size_t j = 0; j < mixed.size(); ++j) {
    EXPECT_EQ(mixed[j].label, -1);
    EXPECT_EQ(mixed[j].count, 10);
    EXPECT_EQ(mixed[j].id, static_cast<int64_t>(j));  // one block: the ids of before
  }
  // SRe2L's batching: blocks of batch_size classes, one image of each per batch.
  c.batch_size = 4;
  auto blocks = recover::plan_units(c, 10, all);
  ASSERT_EQ(blocks.size(), 15u);  // 5 image indices x 3 blocks (4, 4, 2 classes)
  EXPECT_EQ(blocks[0].first, 0);
  EXPECT_EQ(blocks[1].first, 4);
  EXPECT_EQ(blocks[2].first, 8);
  EXPECT_EQ(blocks[2].count, 2);
  EXPECT_EQ(blocks[4].chunk, 1);  // image index 1, block 1
  EXPECT_EQ(blocks[4].id, 1 * 3 + 1);
  EXPECT_EQ(recover::unit_ids_of_class(c, 10, 5), (std::vector<int64_t>{1, 4, 7, 10, 13}));
  auto half = recover::plan_units(c, 10, {4, 5, 6, 7});  // one block
  ASSERT_EQ(half.size(), 5u);
  for (const auto& u : half) EXPECT_EQ(u.first, 4);
}

namespace {
recover::RecoverConfig small_config(const std::string& out, const std::string& mode = "class") {
  recover::RecoverConfig c;
  c.teacher = test::toy().teacher;
  c.out = out;
  c.mode = parse_choice<recover::RecoverMode>(mode, "test");
  c.ipc = 3;
  c.iterations = 60;
  c.lr = 0.1;
  return c;
}
// The folder's images as one int32 tensor (ImageFolder order).
torch::Tensor folder_images(const std::string& dir) {
  return labels::ImageSet::open(dir).read_all().to(torch::kInt32);
}
}  // namespace

TEST(Recover, LearnsImagesTheTeacherAssignsToTheirClass) {
  test::TempDir dir;
  for (const char* mode : {"class", "mixed"}) {
    auto c = small_config(dir.path(mode), mode);
    c.iterations = 150;
    auto r = recover::recover(c, Progress::null());
    EXPECT_EQ(r.images, 9);
    EXPECT_GE(r.teacher_top1, 80.0) << mode;
    for (const auto& cls : r.classes) {
      EXPECT_LT(cls.ce, cls.ce_start) << mode;
      EXPECT_LT(cls.bn, cls.bn_start) << mode;
    }
    auto set = labels::ImageSet::open(c.out);
    EXPECT_EQ(set.num_classes(), 3);
    EXPECT_EQ(set.height(), 16);
    EXPECT_TRUE(file_exists(c.out + "/manifest.json"));
    EXPECT_TRUE(read_json(c.out + "/manifest.json")["complete"].get<bool>());
  }
}

TEST(Recover, SameSeedSameImagesAndSplitRunEqualsSingleRun) {
  test::TempDir dir;
  auto a = small_config(dir.path("a"));  // automatic packing: the 3 classes share one batch
  auto whole = recover::recover(a, Progress::null());
  EXPECT_EQ(whole.units_outside, 0);
  auto b = small_config(dir.path("b"));
  b.classes = "0:1";  // cuts through the one group: it is optimized whole, class 0 kept
  auto part = recover::recover(b, Progress::null());
  EXPECT_EQ(part.units_optimized, 1);
  EXPECT_EQ(part.units_outside, 2);
  EXPECT_EQ(test::png_bytes(b.out).size(), 3u);  // class 0's images, no other
  b.classes = "1:3";
  recover::recover(b, Progress::null());
  EXPECT_EQ(test::png_bytes(a.out), test::png_bytes(b.out));
  // Groups of 2 ({0, 1}, {2}): a range from 1 cuts the first.
  auto one = small_config(dir.path("pack2-one"));
  one.pack = 2;
  recover::recover(one, Progress::null());
  auto two = small_config(dir.path("pack2-split"));
  two.pack = 2;
  two.classes = "1:3";
  EXPECT_EQ(recover::recover(two, Progress::null()).units_outside, 1);
  two.classes = "0:1";
  recover::recover(two, Progress::null());
  EXPECT_EQ(test::png_bytes(one.out), test::png_bytes(two.out));
  auto c = small_config(dir.path("c"));
  c.seed = 5;
  recover::recover(c, Progress::null());
  EXPECT_NE(test::png_bytes(a.out), test::png_bytes(c.out));
}

// The toy teacher's batches sum in the same order whatever their size; a Fashion-MNIST
// ConvNet's do not: with groups made from the range alone, class 0's PNGs of a
// `--classes 0:1` run differed from the whole run's in every image (issue 29).
TEST(Recover, SplitThroughAGroupOfAConvNetEqualsTheWholeRun) {
  if (!test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  test::TempDir dir;
  squeeze::SqueezeConfig sq;
  sq.data = "fashion-mnist:train@2000";
  sq.epochs = 1;
  sq.out = dir.path("teacher.pt");
  squeeze::squeeze(sq, Progress::null());
  recover::RecoverConfig c;
  c.teacher = sq.out;
  c.ipc = 4;
  c.iterations = 100;  // enough for reassociation to reach the PNGs
  c.out = dir.path("whole");
  recover::recover(c, Progress::null());  // automatic pack: 8 classes per forward batch
  c.out = dir.path("part");
  c.classes = "0:1";
  EXPECT_GE(recover::recover(c, Progress::null()).units_outside, 7);  // + restarts of stalls
  const auto part = test::png_bytes(c.out);
  ASSERT_EQ(part.size(), 4u);
  const auto whole = test::png_bytes(dir.path("whole"));
  for (const auto& [name, bytes] : part) EXPECT_EQ(whole.at(name), bytes) << name;
}

TEST(Recover, InterruptedRunResumesToTheSameSet) {
  test::TempDir dir;
  auto a = small_config(dir.path("a"));
  a.pack = 1;
  recover::recover(a, Progress::null());
  const auto full = test::png_bytes(a.out);
  // Interrupt: two class folders were never written.
  fs::remove_all(a.out + "/001_hstripes");
  fs::remove_all(a.out + "/002_vstripes");
  auto r = recover::recover(a, Progress::null());
  int skipped = 0;
  for (const auto& c : r.classes) skipped += c.skipped;
  EXPECT_EQ(skipped, 1);
  EXPECT_EQ(test::png_bytes(a.out), full);
  // Another config into the same folder is refused.
  auto other = small_config(dir.path("a"));
  other.lr = 0.2;
  EXPECT_THROW(recover::recover(other, Progress::null()), std::invalid_argument);
}

namespace {
// Throws once `limit` iterations are done, as a kill would stop the run.
class KillAfter : public Progress {
 public:
  explicit KillAfter(int64_t limit) : limit_(limit) {}
  void start(const std::string&, int64_t, const std::string&) override {}
  void update(int64_t done, const std::string&) override {
    if (done >= limit_) throw std::runtime_error("killed");
  }
  void finish(const std::string&) override {}
  void message(const std::string&) override {}

 private:
  int64_t limit_;
};
}  // namespace

// A kill mid-run keeps finished units (on disk, staged as PNGs in hidden folders); no class
// folder is visible until complete, and the resumed run gives the uninterrupted run's bytes.
TEST(Recover, KilledRunOfEitherModeResumesFromItsUnits) {
  test::TempDir dir;
  for (const char* mode : {"class", "mixed"}) {
    auto whole = small_config(dir.path(std::string(mode) + "-whole"), mode);
    whole.pack = 1;
    recover::recover(whole, Progress::null());
    auto killed = small_config(dir.path(std::string(mode) + "-killed"), mode);
    killed.pack = 1;
    KillAfter kill(130);  // 60 iterations per unit: two units done, the third under way
    EXPECT_THROW(recover::recover(killed, kill), std::runtime_error) << mode;
    int visible = 0, staged = 0;
    for (const auto& e : fs::directory_iterator(killed.out))
      if (e.is_directory()) {
        const auto name = e.path().filename().string();
        if (name.rfind(".tmp-", 0) == 0)
          ++staged;
        else if (name[0] != '.')  // .units, .locks: the run's own bookkeeping
          ++visible;
      }
    // class mode: two classes complete, one staged; mixed: nothing complete, all staged
    EXPECT_EQ(visible, std::string(mode) == "class" ? 2 : 0) << mode;
    EXPECT_EQ(staged, std::string(mode) == "class" ? 0 : 3) << mode;
    // what a kill during a write leaves: temp files of a PNG and of a unit
    for (const auto& e : fs::directory_iterator(killed.out))
      if (e.path().filename().string().rfind(".tmp-", 0) == 0)
        write_file_atomic((e.path() / "00001.png.tmp.4242").string(), "partial");
    write_file_atomic(killed.out + "/.units/u0.safetensors.tmp.4242", "partial");
    recover::recover(killed, Progress::null());
    EXPECT_EQ(test::png_bytes(killed.out), test::png_bytes(whole.out)) << mode;
    for (const auto& e : fs::recursive_directory_iterator(killed.out))
      if (e.is_regular_file())
        EXPECT_TRUE(e.path().extension() == ".png" || e.path().extension() == ".json")
            << mode << " left " << e.path();
    EXPECT_EQ(test::png_bytes(killed.out).size(), 9u) << mode;
    for (const auto& e : fs::directory_iterator(killed.out))
      EXPECT_NE(e.path().filename().string()[0], '.') << mode << " left " << e.path();
  }
}

TEST(Recover, PackingMatchesOneClassAtATime) {
  test::TempDir dir;
  auto one = small_config(dir.path("one"));
  one.pack = 1;
  recover::recover(one, Progress::null());
  auto packed = small_config(dir.path("packed"));
  packed.pack = 3;
  recover::recover(packed, Progress::null());
  auto a = labels::ImageSet::open(one.out).read_all().to(torch::kInt32);
  auto b = labels::ImageSet::open(packed.out).read_all().to(torch::kInt32);
  // identical up to float reassociation: at most one 8-bit level on a few pixels
  const double max_diff = (a - b).abs().max().item<double>();
  const double frac_diff = (a != b).to(torch::kFloat64).mean().item<double>();
  EXPECT_LE(max_diff, 2.0);
  EXPECT_LE(frac_diff, 0.01);
}

TEST(Recover, BadInputIsAClearError) {
  test::TempDir dir;
  auto c = small_config(dir.path("x"));
  OptionSet options;  // what a flag or a YAML key sets
  c.declare(options);
  test::expect_throw_with<std::invalid_argument>([&] { options.set("mode", "both"); },
                                                 {"mode: must be class or mixed, not 'both'"});
  options.set("mode", "mixed");
  EXPECT_EQ(c.mode, recover::RecoverMode::mixed);
  EXPECT_EQ(options.to_json()["mode"], "mixed");
  c = small_config(dir.path("x"));
  c.classes = "2:9";
  EXPECT_THROW(recover::recover(c, Progress::null()), std::invalid_argument);
  c = small_config(dir.path("x"));
  c.teacher = dir.path("missing.safetensors");
  EXPECT_THROW(recover::recover(c, Progress::null()), std::runtime_error);
}

// A loss that is not finite is an error naming the unit, as in squeeze and train, not a set of
// NaN images: a class mean of 3e38 (finite, so the checkpoint loads) times the first layer's
// multiplier 10 overflows the BN loss of class 1.
TEST(Recover, ALossThatIsNotFiniteIsAnErrorNamingTheUnit) {
  test::TempDir dir;
  auto ck = models::load_checkpoint(test::toy().teacher, torch::kCPU);
  auto& mean = ck.class_stats.mean.begin()->second;
  mean[1][0] = 3e38f;  // class 1 only
  const std::string teacher = dir.path("nan-stats.safetensors");
  models::save_checkpoint(teacher, ck);
  auto c = small_config(dir.path("out"));
  c.teacher = teacher;
  c.iterations = 20;
  test::expect_throw_with<std::runtime_error>([&] { recover::recover(c, Progress::null()); },
                                              {"recover: the loss of class 1", "not finite"});
}

// The stall rule reads only a unit's own trace and images: a loss that does not fall, or
// images the teacher does not assign to their class, is a stall; a converging unit is not, a
// hard class whose CE stays ~0.6 (Fashion-MNIST's pullover) neither.
TEST(Stall, RuleFlagsALossThatDoesNotFallOrMisclassifiedImages) {
  const recover::StallRule rule{0.05, 0.75, 0.5};
  std::vector<recover::TracePoint> good = {{50, 2.0, 40}, {500, 0.01, 20}, {1000, 0.002, 9}};
  EXPECT_FALSE(recover::stalled(good, 10, 10, rule));
  std::vector<recover::TracePoint> hard = {{50, 1.52, 21.3}, {1000, 0.582, 12.0}};
  EXPECT_FALSE(recover::stalled(hard, 10, 10, rule));
  std::vector<recover::TracePoint> flat = {{50, 1.0, 40}, {1000, 0.9, 38}};
  EXPECT_TRUE(recover::stalled(flat, 10, 10, rule));
  EXPECT_TRUE(recover::stalled(good, 4, 10, rule));  // the teacher rejects most images
  EXPECT_FALSE(recover::stalled({}, 10, 10, rule));
}

// A unit judged stalled is run again from fresh streams; after `stall_restarts` attempts the
// best one is kept and named as unconverged. Traces are recorded per unit, and the restarts
// are deterministic (the same run twice gives the same bytes).
TEST(Stall, StalledUnitsRestartDeterministicallyAndAreReported) {
  test::TempDir dir;
  auto base = small_config(dir.path("base"));
  base.iterations = recover::kMinStallIterations;
  base.pack = 1;
  auto r0 = recover::recover(base, Progress::null());
  EXPECT_EQ(r0.restarts, 0);
  EXPECT_TRUE(r0.unconverged.empty());
  for (const auto& c : r0.classes) {
    ASSERT_EQ(c.units.size(), 1u);
    EXPECT_EQ(c.units[0]["trace"].size(), static_cast<size_t>(recover::kTraceWindows));
    EXPECT_EQ(c.units[0]["attempts"], 1);
  }
  // A rule nothing can satisfy: every unit stalls, restarts twice, and is reported.
  auto strict = small_config(dir.path("strict"));
  strict.iterations = recover::kMinStallIterations;  // the rule applies from here
  strict.pack = 2;
  strict.stall_loss = 1e-12;
  strict.stall_restarts = 2;
  auto r1 = recover::recover(strict, Progress::null());
  EXPECT_EQ(r1.restarts, 6);  // two per unit (class mode, ipc 3 = batch: one unit per class)
  EXPECT_EQ(r1.unconverged.size(), 3u);
  for (const auto& c : r1.classes) {
    EXPECT_FALSE(c.converged);
    EXPECT_EQ(c.restarts, 2);
    EXPECT_EQ(c.units[0]["attempts"], 3);
  }
  const json manifest = read_json(strict.out + "/manifest.json");
  EXPECT_EQ(manifest["restarts"], 6);
  EXPECT_EQ(manifest["unconverged"].size(), 3u);
  // Restarted units are other images than the first attempt's, the same on every run.
  EXPECT_NE(test::png_bytes(base.out), test::png_bytes(strict.out));
  auto again = strict;
  again.out = dir.path("again");
  again.pack = 1;
  recover::recover(again, Progress::null());
  auto a = folder_images(strict.out), b = folder_images(again.out);
  EXPECT_LE((a - b).abs().max().item<double>(), 2.0);  // packing: float reassociation only
}

// Mixed mode in batches of 2 classes makes the same kind of folder, split by --classes over
// two runs exactly as one run makes it.
TEST(Recover, MixedModeBatchesOfSomeClassesSplitLikeClassMode) {
  test::TempDir dir;
  auto one = small_config(dir.path("one"), "mixed");
  one.batch_size = 2;
  one.pack = 1;
  auto r = recover::recover(one, Progress::null());
  EXPECT_EQ(r.images, 9);
  auto split = small_config(dir.path("split"), "mixed");
  split.batch_size = 2;
  split.pack = 1;
  split.classes = "0:2";
  recover::recover(split, Progress::null());
  split.classes = "2:3";
  recover::recover(split, Progress::null());
  EXPECT_EQ(test::png_bytes(one.out), test::png_bytes(split.out));
  EXPECT_TRUE(read_json(split.out + "/manifest.json")["complete"].get<bool>());
  // Ranges that cut through a batch of 2 classes: the batch is made whole, its other class
  // discarded (or left to the range that holds it).
  auto cut = small_config(dir.path("cut"), "mixed");
  cut.batch_size = 2;
  cut.pack = 1;
  cut.classes = "1:3";
  auto part = recover::recover(cut, Progress::null());
  EXPECT_EQ(part.images, 6);
  cut.classes = "0:1";  // its batches were kept by the run above
  EXPECT_EQ(recover::recover(cut, Progress::null()).units_optimized, 0);
  EXPECT_EQ(test::png_bytes(one.out), test::png_bytes(cut.out));
  EXPECT_FALSE(fs::exists(cut.out + "/.units"));  // complete: nothing left behind
  const json a = read_json(one.out + "/manifest.json"), b = read_json(cut.out + "/manifest.json");
  EXPECT_TRUE(b["complete"].get<bool>());
  ASSERT_EQ(b["batches"].size(), a["batches"].size());  // 3 image indices x 2 blocks
  for (size_t i = 0; i < a["batches"].size(); ++i) {
    EXPECT_EQ(b["batches"][i]["classes"], a["batches"][i]["classes"]);
    EXPECT_EQ(b["batches"][i]["ce"], a["batches"][i]["ce"]);
  }
}
