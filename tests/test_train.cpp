// Student training: the label pool and its draws (METHOD.md Stage 4), replay, resume,
// input checks, online labels.
#include <gtest/gtest.h>
#include <torch/version.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/io.h"
#include "core/runtime.h"
#include "core/safetensors.h"
#include "engine/precision.h"
#include "fixtures.h"
#include "labels/codec.h"
#include "labels/label_pool.h"
#include "labels/label_store.h"
#include "labels/replay.h"
#include "models/registry.h"
#include "recover/recover.h"
#include "recover/units.h"
#include "relabel/relabel.h"
#include "squeeze/squeeze.h"
#include "train/epoch.h"
#include "train/student.h"

using namespace lpld;
namespace fs = std::filesystem;

TEST(LabelPool, BatchToEpochRandomDrawsWithReplacementFromThePool) {
  labels::PoolSpec p;
  p.pool_steps = 37;
  p.batches_per_epoch = 5;
  p.stored_epochs = 300;
  p.seed = 3;
  std::set<int64_t> used;
  bool repeat_within_epoch = false;
  for (int64_t e = 0; e < 300; ++e) {
    auto s = labels::draw_epoch_steps(p, e);
    ASSERT_EQ(s.size(), 5u);
    std::set<int64_t> uniq(s.begin(), s.end());
    repeat_within_epoch = repeat_within_epoch || uniq.size() < s.size();
    for (auto id : s) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, 37);
      used.insert(id);
    }
    EXPECT_EQ(s, labels::draw_epoch_steps(p, e));  // reproducible
  }
  EXPECT_EQ(used.size(), 37u);  // every pooled batch is usable (official code: not so)
  EXPECT_TRUE(repeat_within_epoch);
}

TEST(LabelPool, OrderReplaysEverythingAndOtherGranularities) {
  labels::PoolSpec p;
  p.pool_steps = 15;
  p.batches_per_epoch = 5;
  p.stored_epochs = 3;
  p.metric = "order";
  EXPECT_EQ(labels::draw_epoch_steps(p, 1), (std::vector<int64_t>{5, 6, 7, 8, 9}));
  EXPECT_EQ(labels::draw_epoch_steps(p, 3), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  p.granularity = labels::Granularity::epoch;
  p.metric = "random";
  p.pool_steps = 10;  // two whole epochs
  for (int64_t e = 0; e < 20; ++e) {
    auto s = labels::draw_epoch_steps(p, e);
    EXPECT_TRUE(s.front() == 0 || s.front() == 5);
    EXPECT_EQ(s.back(), s.front() + 4);
  }
  p.granularity = labels::Granularity::batch;
  p.pool_steps = 7;
  std::vector<int> count(7, 0);
  for (int64_t e = 0; e < 7; ++e)
    for (auto id : labels::draw_epoch_steps(p, e)) ++count[id];
  for (int c : count) EXPECT_EQ(c, 5);  // 35 draws = 5 full passes without replacement
  test::expect_throw_with<std::invalid_argument>(
      [] { parse_choice<labels::Granularity>("stripes", "--granularity"); },
      {"--granularity: must be batch_to_epoch, batch or epoch, not 'stripes'"});
}

TEST(LabelPool, RuleScoresAndSelection) {
  auto probs = torch::tensor({{0.7, 0.2, 0.1}, {0.1, 0.3, 0.6}}, torch::kFloat64);
  auto labels = torch::tensor({0, 1}, torch::kInt64);
  EXPECT_DOUBLE_EQ(labels::rule_score("correct", probs, labels, 1), 0.5);
  EXPECT_NEAR(labels::rule_score("confidence", probs, labels, 1), 0.65, 1e-12);
  EXPECT_NEAR(labels::rule_score("diff", probs, labels, 1), (0.5 + 0.3) / 2, 1e-12);
  EXPECT_NEAR(labels::rule_score("diff_signed", probs, labels, 1), (0.5 - 0.3) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(labels::rule_score("cut_ratio", probs, labels, 0.25), 0.25);
  std::vector<double> scores = {0.5, 0.9, 0.1, 0.7};
  EXPECT_EQ(labels::select_by_score(scores, 2, true), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(labels::select_by_score(scores, 2, false), (std::vector<int64_t>{0, 2}));
  EXPECT_TRUE(labels::is_rule_metric("diff_signed_hard"));
  EXPECT_FALSE(labels::is_rule_metric("diff_medium"));
  labels::PoolSpec p;
  p.metric = "confidence_easy";
  p.pool_steps = 2;
  p.batches_per_epoch = 10;
  p.selected = {1, 3};
  for (auto id : labels::draw_epoch_steps(p, 0)) EXPECT_TRUE(id == 1 || id == 3);
}

namespace {
struct Labelled {
  std::string images, labels, labels_other, labels_full;
  test::TempDir dir;
  Labelled() {
    recover::RecoverConfig rc;
    rc.teacher = test::toy().teacher;
    rc.out = dir.path("images");
    rc.ipc = 4;
    rc.iterations = 40;
    recover::recover(rc, Progress::null());
    images = rc.out;
    relabel::RelabelConfig lc;
    lc.teacher = rc.teacher;
    lc.images = images;
    lc.out = dir.path("labels.lpld");
    lc.epochs = 30;
    lc.views.batch_size = 4;
    lc.prune_ratio = 0.5;
    relabel::relabel(lc, Progress::null());
    labels = lc.out;
    lc.out = dir.path("labels-full.lpld");
    lc.prune_ratio = 0;
    relabel::relabel(lc, Progress::null());
    labels_full = lc.out;
    lc.prune_ratio = 0.5;
    rc.out = dir.path("images2");
    rc.seed = 9;
    recover::recover(rc, Progress::null());
    lc.images = rc.out;
    lc.out = dir.path("labels2.lpld");
    relabel::relabel(lc, Progress::null());
    labels_other = lc.out;
  }
};
const Labelled& labelled() {
  static Labelled l;
  return l;
}
train::TrainConfig small(const std::string& out) {
  train::TrainConfig c;
  c.images = labelled().images;
  c.labels = labelled().labels;
  c.val = test::toy().val;
  c.arch = "convnet-d2-w8";
  c.out = out;
  c.epochs = 30;
  c.prune_ratio = 0.5;
  c.lr = 1e-2;
  c.checkpoint_every = 1;
  return c;
}

// The students two runs wrote are the same, bit for bit.
void expect_same_student(const std::string& out_a, const std::string& out_b) {
  const auto a = load_safetensors(out_a + "/student.safetensors");
  const auto b = load_safetensors(out_b + "/student.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [k, t] : a.tensors) EXPECT_TRUE(torch::equal(t, b.tensors.at(k))) << k;
}

// Throws once training reaches `epoch`, as a kill would stop it.
class KillAt : public Progress {
 public:
  explicit KillAt(int64_t epoch) : epoch_(epoch) {}
  void start(const std::string&, int64_t, const std::string&) override {}
  void update(int64_t, const std::string& status) override {
    if (status.rfind("epoch " + std::to_string(epoch_) + " ", 0) == 0)
      throw std::runtime_error("killed");
  }
  void finish(const std::string&) override {}
  void message(const std::string&) override {}

 private:
  int64_t epoch_;
};
}  // namespace

TEST(Train, LearnsAndResumesToTheSameResult) {
  test::TempDir dir;
  auto whole = train::train_student(small(dir.path("whole")), Progress::null());
  EXPECT_GT(whole.top1, 50.0);      // 3 classes: chance is 33%
  EXPECT_EQ(whole.pool_steps, 45);  // floor(0.5 * 30 * 3)
  EXPECT_TRUE(fs::exists(dir.path("whole/student.safetensors")));
  EXPECT_FALSE(fs::exists(dir.path("whole/train-state.safetensors")));
  // set-up (before epoch 1), the epochs and the final evaluation share the run's seconds
  EXPECT_GT(whole.setup_seconds, 0.0);
  EXPECT_LE(whole.setup_seconds + whole.train_seconds, whole.seconds);

  KillAt kill(21);
  EXPECT_THROW(train::train_student(small(dir.path("killed")), kill), std::runtime_error);
  EXPECT_TRUE(fs::exists(dir.path("killed/train-state.safetensors")));
  auto resumed = train::train_student(small(dir.path("killed")), Progress::null());
  EXPECT_EQ(resumed.resumed_from_epoch, 20);
  EXPECT_DOUBLE_EQ(resumed.top1, whole.top1);
  EXPECT_EQ(resumed.steps, whole.steps);
  auto a = load_safetensors(dir.path("whole/student.safetensors"));
  auto b = load_safetensors(dir.path("killed/student.safetensors"));
  for (const auto& [k, t] : a.tensors)
    EXPECT_TRUE(torch::allclose(t, b.tensors[k], 1e-5, 1e-6)) << k;
  // a finished identical run is reused, not retrained
  EXPECT_TRUE(train::train_student(small(dir.path("whole")), Progress::null()).reused);
}

TEST(Train, ReadingAheadChangesNoNumber) {
  test::TempDir dir;
  auto inline_read = small(dir.path("inline"));
  inline_read.epochs = 6;
  inline_read.read_ahead = 0;
  auto ahead = inline_read;
  ahead.out = dir.path("ahead");
  ahead.read_ahead = 3;
  const auto a = train::train_student(inline_read, Progress::null());
  const auto b = train::train_student(ahead, Progress::null());
  EXPECT_EQ(a.top1, b.top1);
  EXPECT_GE(b.input_wait_seconds, 0.0);
  EXPECT_LE(b.input_wait_seconds, b.train_seconds);
  expect_same_student(dir.path("inline"), dir.path("ahead"));
}

// --deterministic: PyTorch's deterministic algorithms on; on the CPU every kernel lpld uses has
// one, so a run neither fails nor changes (on CUDA it is what makes repeats bitwise).
TEST(Train, DeterministicAlgorithmsRunAndChangeNothingOnTheCpu) {
  test::TempDir dir;
  auto plain = small(dir.path("plain"));
  plain.epochs = 4;
  auto strict = plain;
  strict.out = dir.path("strict");
  train::train_student(plain, Progress::null());
  set_deterministic(true);
  EXPECT_EQ(runtime_info().at("deterministic"), true);
  try {
    train::train_student(strict, Progress::null());
  } catch (...) {
    set_deterministic(false);
    throw;
  }
  set_deterministic(false);
  EXPECT_EQ(runtime_info().at("deterministic"), false);
  expect_same_student(dir.path("plain"), dir.path("strict"));
}

TEST(Train, RefusesMismatchedOrTooSmallLabelStores) {
  test::TempDir dir;
  auto c = small(dir.path("x"));
  c.labels = labelled().labels_other;  // made for other images
  try {
    train::train_student(c, Progress::null());
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("other images"), std::string::npos);
  }
  c = small(dir.path("x"));
  c.metric = "confidence_easy";  // ranks every step: needs an unpruned store
  EXPECT_THROW(train::train_student(c, Progress::null()), std::invalid_argument);
  c = small(dir.path("x"));
  c.prune_ratio = 0.2;  // needs more steps than the store (pruned at 0.5) holds
  EXPECT_THROW(train::train_student(c, Progress::null()), std::invalid_argument);
  EXPECT_FALSE(fs::exists(dir.path("x/student.safetensors")));
}

// `--recipe auto` in recover, relabel and train: the authors' settings for the teacher's scale
// (METHOD.md; issue: recipes follow the data), what was set kept.
TEST(Recipe, AutoResolvesToTheAuthorsSettingsAtEachScale) {
  for (int64_t px : {28, 32}) {  // our 28-32 px default: the fields' defaults
    const auto rc = resolve_recipe(recover::RecoverConfig{}, px, "recover");
    EXPECT_EQ(rc.recipe, "small");
    EXPECT_EQ(rc.iterations, 1000);
    EXPECT_EQ(rc.jitter, 2);
    const auto lc = resolve_recipe(relabel::RelabelConfig{}, px, "relabel");
    EXPECT_EQ(lc.views.batch_size, 20);
    const auto tc = resolve_recipe(train::TrainConfig{}, px, "train");
    EXPECT_EQ(tc.recipe, "small");
    EXPECT_EQ(tc.optimizer, train::Optimizer::adamw);
    EXPECT_EQ(tc.epochs, 300);
  }
  // 64 px: SRe2L's Tiny-ImageNet recipe
  const auto r64 = resolve_recipe(recover::RecoverConfig{}, 64, "recover");
  EXPECT_EQ(r64.recipe, "tiny");
  EXPECT_EQ(r64.iterations, 4000);
  EXPECT_DOUBLE_EQ(r64.lr, 0.1);
  EXPECT_DOUBLE_EQ(r64.r_bn, 0.05);
  EXPECT_EQ(r64.jitter, 4);
  EXPECT_EQ(r64.batch_size, 100);
  const auto l64 = resolve_recipe(relabel::RelabelConfig{}, 64, "relabel");
  EXPECT_EQ(l64.views.batch_size, 64);
  EXPECT_EQ(l64.epochs, 100);
  EXPECT_FALSE(l64.views.cutmix);
  const auto t64 = resolve_recipe(train::TrainConfig{}, 64, "train");
  EXPECT_EQ(t64.optimizer, train::Optimizer::sgd);
  EXPECT_DOUBLE_EQ(t64.lr, 0.2);
  EXPECT_EQ(t64.warmup_epochs, 5);
  EXPECT_TRUE(t64.temperature_squared);
  // 224 px: ImageNet-1K's official settings
  auto r224 = resolve_recipe(recover::RecoverConfig{}, 224, "recover");
  EXPECT_EQ(r224.recipe, "imagenet1k");
  EXPECT_EQ(r224.iterations, 4000);
  EXPECT_DOUBLE_EQ(r224.lr, 0.25);
  EXPECT_DOUBLE_EQ(r224.r_bn, 0.01);
  EXPECT_EQ(r224.jitter, 32);
  EXPECT_FALSE(r224.jitter_signed);
  r224.ipc = 50;
  EXPECT_EQ(recover::unit_batch(r224, 1000), 50);  // class-wise batch = IPC
  r224.mode = recover::RecoverMode::mixed;
  EXPECT_EQ(recover::unit_batch(r224, 1000), 100);  // SRe2L's mixed batch: 100 classes
  EXPECT_EQ(resolve_recipe(relabel::RelabelConfig{}, 224, "relabel").views.batch_size, 128);
  const auto t224 = resolve_recipe(train::TrainConfig{}, 224, "train");
  EXPECT_EQ(t224.optimizer, train::Optimizer::adamw);
  EXPECT_DOUBLE_EQ(t224.lr, 1e-3);
  EXPECT_DOUBLE_EQ(t224.weight_decay, 0.01);
  EXPECT_EQ(t224.views.batch_size, 128);
  EXPECT_DOUBLE_EQ(t224.temperature, 20);
  EXPECT_FALSE(t224.temperature_squared);
  // what was set is kept and said; a named recipe is not re-resolved
  recover::RecoverConfig mine;
  mine.iterations = 50;
  mine.ipc = 3;
  std::string note;
  const auto kept = resolve_recipe(mine, 224, "recover", &note);
  EXPECT_EQ(kept.iterations, 50);
  EXPECT_EQ(kept.ipc, 3);
  EXPECT_DOUBLE_EQ(kept.lr, 0.25);
  EXPECT_NE(note.find("'imagenet1k' for a 224 px teacher, with iterations 50"), std::string::npos)
      << note;
  mine.apply_recipe("small");
  EXPECT_EQ(resolve_recipe(mine, 224, "recover").iterations, 1000);
  EXPECT_THROW(mine.apply_recipe("huge"), std::invalid_argument);
}

// A store fixes its views: a view option set otherwise would be ignored, so it is an error.
TEST(Train, ViewOptionsThatDifferFromTheStoresAreErrorsNotIgnored) {
  test::TempDir dir;
  const labels::LabelStore store(labelled().labels);
  const auto& h = store.header();
  ASSERT_EQ(h.views.batch_size, 4);
  ASSERT_TRUE(h.views.cutmix);
  auto c = small(dir.path("x"));
  c.views.batch_size = 7;
  test::expect_throw_with<std::invalid_argument>([&] { train::train_student(c, Progress::null()); },
                                                 {"--batch-size", "7", "4", labelled().labels});
  c = small(dir.path("x"));
  c.apply_recipe("imagenet1k");  // batch 128: the recipe's setting is not silently dropped
  test::expect_throw_with<std::invalid_argument>([&] { train::train_student(c, Progress::null()); },
                                                 {"--batch-size", "128"});
  c = small(dir.path("x"));
  c.views.cutmix = false;
  test::expect_throw_with<std::invalid_argument>([&] { train::train_student(c, Progress::null()); },
                                                 {"--cutmix", "false"});
  c = small(dir.path("x"));
  c.views.crop.scale_lo = 0.5;
  test::expect_throw_with<std::invalid_argument>([&] { train::train_student(c, Progress::null()); },
                                                 {"--crop-scale-min", "0.5", "0.08"});
  EXPECT_FALSE(fs::exists(dir.path("x/student.safetensors")));
  c = small(dir.path("x"));  // the store's own values, given explicitly, are accepted
  c.views.batch_size = 4;
  c.epochs = 2;
  c.prune_ratio = 0.9;
  EXPECT_NO_THROW(train::train_student(c, Progress::null()));
}

// Rule-based pruning (METHOD.md "Analysis"): the pool a run reports is the top (easy) or
// bottom (hard) of the rule's scores, recomputed here with plain loops from the store.
TEST(Train, RuleBasedPoolIsTheRankingOfIndependentlyComputedScores) {
  test::TempDir dir;
  labels::LabelStore store(labelled().labels_full);
  const auto& h = store.header();
  ASSERT_TRUE(h.views.cutmix);
  std::map<std::string, std::vector<double>> scores;
  for (int64_t s = 0; s < h.total_steps(); ++s) {
    auto plan = labels::plan_step(h, s);
    auto logits = store.logits(s).to(torch::kFloat64).contiguous();
    const int64_t n = logits.size(0), c = logits.size(1);
    const double* l = logits.data_ptr<double>();
    double correct = 0, conf = 0, diff = 0, diff_signed = 0;
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> p(l + i * c, l + (i + 1) * c);
      const double mx = *std::max_element(p.begin(), p.end());
      double z = 0;
      for (double& v : p) z += (v = std::exp(v - mx));
      for (double& v : p) v /= z;
      const int64_t y = h.labels[static_cast<size_t>(plan.indices[static_cast<size_t>(i)])];
      std::vector<double> sorted = p;
      std::sort(sorted.rbegin(), sorted.rend());
      double best_other = -1;
      for (int64_t k = 0; k < c; ++k)
        if (k != y) best_other = std::max(best_other, p[static_cast<size_t>(k)]);
      correct += std::max_element(p.begin(), p.end()) - p.begin() == y;
      conf += sorted[0];
      diff += sorted[0] - sorted[1];
      diff_signed += p[static_cast<size_t>(y)] - best_other;
    }
    scores["correct"].push_back(correct / n);
    scores["confidence"].push_back(conf / n);
    scores["diff"].push_back(diff / n);
    scores["diff_signed"].push_back(diff_signed / n);
    scores["cut_ratio"].push_back(plan.mix.lambda);
  }
  for (const auto& [rule, sc] : scores) {
    for (const char* side : {"easy", "hard"}) {
      auto c = small(dir.path(rule + side));
      c.labels = labelled().labels_full;
      c.metric = rule + "_" + side;
      c.prune_ratio = 0.9;  // 9 of 90 steps
      c.epochs = 1;
      auto r = train::train_student(c, Progress::null());
      ASSERT_FALSE(r.rule_pool.is_null()) << c.metric;
      auto chosen = r.rule_pool["selected_steps"].get<std::vector<int64_t>>();
      ASSERT_EQ(chosen.size(), 9u) << c.metric;
      EXPECT_EQ(read_json(dir.path(rule + side + "/result.json"))["rule_pool"], r.rule_pool);
      std::set<int64_t> in(chosen.begin(), chosen.end());
      ASSERT_EQ(in.size(), 9u) << c.metric;
      // every chosen step scores at least as well (easy) / as badly (hard) as every other one;
      // 1e-6 allows for the float32 softmax of the tool against double here
      const bool easy = std::string(side) == "easy";
      double worst_in = easy ? 1e9 : -1e9, best_out = easy ? -1e9 : 1e9;
      for (int64_t s = 0; s < h.total_steps(); ++s) {
        const double v = sc[static_cast<size_t>(s)];
        if (in.count(s))
          worst_in = easy ? std::min(worst_in, v) : std::max(worst_in, v);
        else
          best_out = easy ? std::max(best_out, v) : std::min(best_out, v);
      }
      if (easy)
        EXPECT_GE(worst_in, best_out - 1e-6) << c.metric;
      else
        EXPECT_LE(worst_in, best_out + 1e-6) << c.metric;
    }
  }
  // the two sides of a rule pick different steps unless every score ties
  auto pick = [&](const std::string& m) {
    return read_json(dir.path(m + "/result.json"))["rule_pool"]["selected_steps"];
  };
  EXPECT_NE(pick("cut_ratioeasy"), pick("cut_ratiohard"));
  EXPECT_NE(pick("confidenceeasy"), pick("confidencehard"));
}

// Online labels are the teacher's logits of the very views a store would hold: a run on a
// float32 store of the same views (one label step per teacher forward, replayed in order) trains
// the same student, bit for bit.
TEST(Train, OnlineLabelsAreTheTeachersOnTheViewsAStoreWouldHold) {
  test::TempDir dir;
  auto c = small(dir.path("online"));
  c.labels = "online";
  c.teacher = test::toy().teacher;
  c.prune_ratio = 0;
  c.views.batch_size = 4;
  auto r = train::train_student(c, Progress::null());
  EXPECT_EQ(r.steps, 30 * 3);
  EXPECT_GT(r.top1, 50.0);
  relabel::RelabelConfig lc;
  lc.teacher = c.teacher, lc.images = labelled().images, lc.out = dir.path("fp32.lpld");
  lc.epochs = 30, lc.views.batch_size = 4, lc.logits = labels::LabelValues::fp32,
  lc.forward_batch = 4;
  relabel::relabel(lc, Progress::null());
  auto stored = small(dir.path("stored"));
  stored.labels = lc.out, stored.prune_ratio = 0, stored.granularity = labels::Granularity::epoch;
  stored.metric = "order";
  EXPECT_EQ(train::train_student(stored, Progress::null()).top1, r.top1);
  expect_same_student(dir.path("online"), dir.path("stored"));
}

// LPQLD's dynamic CA picks the grid temperature that minimizes the KL: a student whose logits
// are the teacher's times 0.3 is matched exactly at t = 0.30.
TEST(Train, StudentTemperatureSearchFindsTheMinimizingGridPoint) {
  torch::manual_seed(1);
  const auto z = torch::randn({16, 10}) * 3;
  train::EpochContext ctx;
  ctx.last_teacher = torch::softmax(z, 1);
  ctx.last_student = z * 0.3;
  ctx.student_temperature = 1;
  EXPECT_NEAR(train::search_student_temperature(ctx), 0.30, 1e-12);
  ctx.last_student = z * 0.07;
  EXPECT_NEAR(train::search_student_temperature(ctx), 0.07, 1e-12);
}

// LPQLD's dynamic knowledge reuse: the teacher temperature schedules.
TEST(Train, TemperatureSchedulesFollowLpqld) {
  train::TrainConfig c;
  c.temperature = 20;
  EXPECT_DOUBLE_EQ(train::teacher_temperature(c, 150, 300), 20.0);
  c.temperature_schedule = train::TemperatureSchedule::step;  // 20 * 0.7^(e // 30), at least 2
  EXPECT_DOUBLE_EQ(train::teacher_temperature(c, 29, 300), 20.0);
  EXPECT_DOUBLE_EQ(train::teacher_temperature(c, 30, 300), 14.0);
  EXPECT_NEAR(train::teacher_temperature(c, 95, 300), 20 * 0.343, 1e-12);
  EXPECT_DOUBLE_EQ(train::teacher_temperature(c, 300, 300), 2.0);  // 20 * 0.7^10 < 2
  c.temperature_schedule = train::TemperatureSchedule::cosine;     // 1 + 19 (1 + cos(pi e / E)) / 2
  EXPECT_DOUBLE_EQ(train::teacher_temperature(c, 0, 300), 20.0);
  EXPECT_NEAR(train::teacher_temperature(c, 150, 300), 10.5, 1e-12);
  EXPECT_NEAR(train::teacher_temperature(c, 300, 300), 1.0, 1e-12);
}

// Top-k quantized labels (LPQLD's MR-k) and the calibrated student temperature train; the
// CA search moves the student temperature into (0, 1]; every variant is a different student.
TEST(Train, QuantizedLabelsAndLpqldTrainingRun) {
  test::TempDir dir;
  relabel::RelabelConfig lc;
  lc.teacher = test::toy().teacher, lc.images = labelled().images, lc.out = dir.path("q.lpld");
  lc.epochs = 30, lc.views.batch_size = 4, lc.topk = 2, lc.logits = labels::LabelValues::int4;
  relabel::relabel(lc, Progress::null());
  labels::LabelStore store(lc.out);
  auto p = store.probs(0, 20.0);
  EXPECT_TRUE(torch::allclose(p.sum(1), torch::ones({p.size(0)}), 1e-5, 1e-5));
  EXPECT_EQ((p > 0).sum(1).max().item<int64_t>(), 2);  // one class of 3 dropped per row
  auto base = small(dir.path("plain"));
  base.labels = lc.out;
  auto plain = train::train_student(base, Progress::null());
  EXPECT_GT(plain.top1, 40.0);
  auto dkr = small(dir.path("dkr"));
  dkr.labels = lc.out;
  dkr.temperature_schedule = train::TemperatureSchedule::step, dkr.temperature_step = 5;
  dkr.student_temperature_search = true;
  auto lpqld = train::train_student(dkr, Progress::null());
  EXPECT_GT(lpqld.top1, 33.0);
  EXPECT_NE(lpqld.top1, plain.top1);
}

// The fallback (issue #30): a share of each epoch's steps renders pruned steps' views, drawn
// reproducibly and uniformly from the steps the pool lacks, and the others replay the pool.
TEST(LabelPool, FallbackStepsArePrunedStepsAtTheirShare) {
  labels::PoolSpec p;
  p.pool_steps = 10, p.batches_per_epoch = 8, p.stored_epochs = 100, p.total_steps = 800;
  p.seed = 5;
  auto steps = labels::draw_epoch_steps(p, 3);
  const auto unchanged = steps;
  EXPECT_EQ(labels::draw_fallback_steps(p, 3, steps), std::vector<uint8_t>(8, 0));
  EXPECT_EQ(steps, unchanged);  // no share: the pool's draw as it was
  p.fallback_share = 0.25;
  int64_t fallbacks = 0, draws = 0;
  std::set<int64_t> pruned_seen;
  for (int64_t e = 0; e < 400; ++e) {
    auto s = labels::draw_epoch_steps(p, e);
    const auto pool_draw = s;
    const auto fb = labels::draw_fallback_steps(p, e, s);
    auto again = labels::draw_epoch_steps(p, e);
    EXPECT_EQ(labels::draw_fallback_steps(p, e, again), fb);  // reproducible
    EXPECT_EQ(again, s);
    for (size_t i = 0; i < s.size(); ++i, ++draws) {
      if (fb[i]) {
        ++fallbacks;
        EXPECT_GE(s[i], 10);
        EXPECT_LT(s[i], 800);
        pruned_seen.insert(s[i]);
      } else {
        EXPECT_EQ(s[i], pool_draw[i]);
      }
    }
  }
  EXPECT_NEAR(static_cast<double>(fallbacks) / static_cast<double>(draws), 0.25, 0.02);
  EXPECT_GT(pruned_seen.size(), 400u);  // spread over the pruned steps, not a few of them
  p.fallback_share = 1.0;
  test::expect_throw_with<std::invalid_argument>([&] { labels::validate_pool(p); },
                                                 {"--fallback-share", "[0, 1)"});
  p.fallback_share = 0.5, p.pool_steps = 800;
  test::expect_throw_with<std::invalid_argument>([&] { labels::validate_pool(p); },
                                                 {"--fallback-share", "prunes none"});
}

// A fallback step's teacher distribution: each image's row of the image labels at T, mixed
// with its CutMix partner's by the share of pixels pasted from the partner.
TEST(Train, FallbackLabelsMixImageRowsByThePastedArea) {
  labels::LabelHeader h;
  h.num_classes = 3, h.image_size = 8;
  labels::LabelCodec::Rows rows;
  rows.values = torch::tensor({{2.0f, 0.0f, 0.0f}, {0.0f, 4.0f, 0.0f}, {0.0f, 0.0f, 6.0f}});
  labels::StepPlan plan;
  plan.indices = {2, 0};
  const auto p2 = torch::softmax(rows.values[2] / 2.0, 0),
             p0 = torch::softmax(rows.values[0] / 2.0, 0);
  auto probs = train::fallback_probs(rows, h, plan, 2.0);
  EXPECT_TRUE(torch::allclose(probs, torch::stack({p2, p0})));
  plan.cutmix = true;
  plan.mix.perm = {1, 0};
  plan.mix.x1 = 0, plan.mix.y1 = 0, plan.mix.x2 = 4, plan.mix.y2 = 4;  // 16 of 64 pixels pasted
  plan.mix.lambda = 0.9;  // (the Beta draw; the clipped box decides the mix)
  probs = train::fallback_probs(rows, h, plan, 2.0);
  EXPECT_TRUE(torch::allclose(probs, torch::stack({0.75 * p2 + 0.25 * p0, 0.75 * p0 + 0.25 * p2})));
  // top-k rows: the dropped classes get nothing
  rows.indices = torch::tensor({{0, 1, 2}, {1, 0, 2}, {2, 0, 1}});
  EXPECT_TRUE(torch::allclose(train::fallback_probs(rows, h, plan, 2.0).sum(1), torch::ones({2})));
}

// Training with a fallback share needs a store with image labels (an error naming the option
// and the store otherwise) and a pruned pool; with them it trains, and differently.
TEST(Train, FallbackShareTrainsFromImageLabels) {
  test::TempDir dir;
  auto c = small(dir.path("no-table"));
  c.fallback_share = 0.5, c.epochs = 3;
  test::expect_throw_with<std::invalid_argument>(
      [&] { train::train_student(c, Progress::null()); },
      {"--fallback-share", labelled().labels, "--image-labels"});
  relabel::RelabelConfig lc;
  lc.teacher = test::toy().teacher, lc.images = labelled().images, lc.out = dir.path("t.lpld");
  lc.epochs = 30, lc.views.batch_size = 4, lc.prune_ratio = 0.9, lc.image_labels = true;
  relabel::relabel(lc, Progress::null());
  auto fb = small(dir.path("fallback"));
  fb.labels = lc.out, fb.prune_ratio = 0.9, fb.fallback_share = 0.5;
  const auto with = train::train_student(fb, Progress::null());
  EXPECT_GT(with.top1, 40.0);
  auto none = fb;
  none.out = dir.path("none"), none.fallback_share = 0;
  train::train_student(none, Progress::null());
  const auto a = load_safetensors(fb.out + "/student.safetensors").tensors;
  const auto b = load_safetensors(none.out + "/student.safetensors").tensors;
  bool differ = false;
  for (const auto& [k, t] : a) differ = differ || !torch::equal(t, b.at(k));
  EXPECT_TRUE(differ);
}

// A store whose recorded views are not those this lpld renders (another replay version, or a
// different draw order) is refused at its first step, not trained on.
TEST(Train, RefusesAStoreWhoseViewsDigestDiffers) {
  test::TempDir dir;
  labels::LabelStore good(labelled().labels);
  labels::LabelHeader h = good.header();
  labels::LabelHeader other = h;
  other.seed = h.seed + 1;  // records made for other views than the header promises
  {
    labels::LabelStoreWriter w(dir.path("bad.lpld"), h);
    for (int64_t s = 0; s < h.steps_kept; ++s)
      w.write(s, good.logits(s), labels::plan_step(other, s));
    w.commit();
  }
  auto c = small(dir.path("run"));
  c.labels = dir.path("bad.lpld");
  try {
    train::train_student(c, Progress::null());
    FAIL() << "trained on a store with mismatched views";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not those the labels were made for"), std::string::npos)
        << e.what();
  }
}

// --amp and --channels-last (engine/precision.h), on the CPU: what the GPU paths share.
TEST(Precision, AmpNamesAndAutocastRegions) {
  EXPECT_EQ(parse_choice<engine::Amp>("bf16", "--amp"), engine::Amp::bf16);
  EXPECT_EQ(choice_name(parse_choice<engine::Amp>("fp16", "--amp")), "fp16");
  test::expect_throw_with<std::invalid_argument>([] { parse_choice<engine::Amp>("fp8", "--amp"); },
                                                 {"--amp: must be off, bf16 or fp16, not 'fp8'"});
  torch::nn::Linear lin(8, 4);
  const auto x = torch::randn({2, 8});
  {
    engine::AutocastGuard outer(torch::kCPU, engine::Amp::bf16);
    EXPECT_EQ(lin->forward(x).scalar_type(), torch::kBFloat16);
    {
      engine::AutocastGuard off(torch::kCPU, engine::Amp::off);  // changes nothing
      EXPECT_EQ(lin->forward(x).scalar_type(), torch::kBFloat16);
    }
  }
  EXPECT_EQ(lin->forward(x).scalar_type(), torch::kFloat);  // restored
}

TEST(Precision, ChannelsLastComputesTheSameLogits) {
  torch::manual_seed(0);
  auto model = models::make_model({"convnet-d2-w8", 3, 1, 16});
  model->eval();
  const auto x = torch::randn({4, 1, 16, 16});
  const auto nchw = model->forward(x);
  engine::to_channels_last(*model);
  bool any_nhwc = false;
  for (const auto& p : model->parameters())
    any_nhwc = any_nhwc || (p.dim() == 4 && p.is_contiguous(torch::MemoryFormat::ChannelsLast) &&
                            !p.is_contiguous());
  EXPECT_TRUE(any_nhwc);
  engine::Precision p{engine::Amp::off, true};
  const auto nhwc = model->forward(engine::in_layout(x, p));
  EXPECT_TRUE(torch::allclose(nhwc, nchw, 1e-4, 1e-5)) << (nhwc - nchw).abs().max();
}

TEST(Precision, Fp16LossScalingSkipsNonFiniteStepsAndAdaptsTheScale) {
  torch::nn::Linear lin(2, 1);
  torch::optim::SGD sgd(lin->parameters(), 0.1);
  engine::GradScaler scaler(engine::Amp::fp16, torch::kCPU);
  ASSERT_TRUE(scaler.active());
  EXPECT_EQ(scaler.current_scale(), 65536.0);
  const auto w0 = lin->weight.detach().clone();
  try {  // an inf gradient: no step, the scale halves
    lin->weight.mutable_grad() = torch::full_like(lin->weight, INFINITY);
    lin->bias.mutable_grad() = torch::zeros_like(lin->bias);
    EXPECT_FALSE(scaler.step(sgd));
  } catch (const c10::Error& e) {
    GTEST_SKIP() << "this libtorch has no CPU kernels for loss scaling: "
                 << e.what_without_backtrace();
  }
  EXPECT_TRUE(torch::equal(lin->weight.detach(), w0));
  EXPECT_EQ(scaler.current_scale(), 32768.0);
  // a finite scaled gradient is unscaled before the step: 0.1 * (32768 / 32768)
  lin->weight.mutable_grad() = torch::full_like(lin->weight, 32768.0);
  EXPECT_TRUE(scaler.step(sgd));
  EXPECT_TRUE(torch::allclose(lin->weight.detach(), w0 - 0.1));
  EXPECT_TRUE(torch::equal(scaler.scale(torch::ones({})), torch::full({1}, 32768.0)));
  // off: a pass-through
  engine::GradScaler off(engine::Amp::off, torch::kCPU);
  EXPECT_FALSE(off.active());
  EXPECT_EQ(off.current_scale(), 1.0);
}

// bf16 autocast trains a student on the CPU within a stated tolerance of float32: finite
// losses and top-1 within 10 points on the toy set.
TEST(Precision, Bf16StudentTrainsLikeFloat32OnTheCpu) {
  test::TempDir dir;
  auto fp32 = small(dir.path("fp32"));
  auto bf16 = fp32;
  bf16.out = dir.path("bf16");
  bf16.amp = engine::Amp::bf16;
  bf16.channels_last = true;
  const auto a = train::train_student(fp32, Progress::null());
  const auto b = train::train_student(bf16, Progress::null());
  EXPECT_GT(b.top1, 50.0) << "float32: " << a.top1;  // chance is 33%
  EXPECT_NEAR(b.top1, a.top1, 10.0);  // (a non-finite loss stops train with an error)
  // recorded with the result, with the libtorch that computed it
  const json r = json::parse(read_file(dir.path("bf16/result.json")));
  EXPECT_EQ(r.at("identity").at("amp"), "bf16");
  EXPECT_EQ(r.at("identity").at("channels_last"), true);
  EXPECT_EQ(r.at("runtime").at("libtorch"), TORCH_VERSION);
  EXPECT_TRUE(r.at("runtime").at("allocator").contains("name"));
  // the bf16 run differs from float32: autocast really ran
  auto sa = load_safetensors(dir.path("fp32/student.safetensors"));
  auto sb = load_safetensors(dir.path("bf16/student.safetensors"));
  bool differ = false;
  for (const auto& [k, t] : sa.tensors) differ = differ || !torch::equal(t, sb.tensors.at(k));
  EXPECT_TRUE(differ);
}

// Every stage on the device the tests take (test::device(): LPLD_TEST_DEVICE, cpu unless set),
// in float32 and under bf16 autocast with channels-last: squeeze (a fine-tuning epoch and
// the class statistics), recover, relabel and train finish with finite losses and files.
TEST(Device, EveryStageRunsOnTheTestDeviceInFloat32AndBf16) {
  const std::string device = test::device();
  test::TempDir dir;
  for (const engine::Amp amp : {engine::Amp::off, engine::Amp::bf16}) {
    const std::string at = dir.path(choice_name(amp));
    squeeze::SqueezeConfig sq;
    sq.data = test::toy().train, sq.val = test::toy().val, sq.init = test::toy().teacher;
    sq.epochs = 1, sq.batch_size = 16, sq.lr = 0.01, sq.out = at + "-teacher.safetensors";
    sq.device = device, sq.amp = amp, sq.channels_last = amp != engine::Amp::off;
    const auto s = squeeze::squeeze(sq, Progress::null());
    EXPECT_GT(s.top1, 50.0) << choice_name(amp);
    recover::RecoverConfig rc;
    rc.teacher = sq.out, rc.out = at + "-images", rc.ipc = 2, rc.iterations = 5;
    rc.device = device, rc.amp = amp, rc.channels_last = sq.channels_last;
    const auto r = recover::recover(rc, Progress::null());
    EXPECT_EQ(test::png_bytes(rc.out).size(), 6u) << choice_name(amp);  // 3 classes x 2
    relabel::RelabelConfig lc;
    lc.teacher = sq.out, lc.images = rc.out, lc.out = at + "-labels.lpld";
    lc.epochs = 4, lc.views.batch_size = 3, lc.device = device, lc.amp = amp;
    lc.channels_last = sq.channels_last;
    relabel::relabel(lc, Progress::null());
    const labels::LabelStore store(lc.out);
    EXPECT_TRUE(torch::isfinite(store.rows(0).values).all().item<bool>()) << choice_name(amp);
    train::TrainConfig tc;
    tc.images = rc.out, tc.labels = lc.out, tc.val = test::toy().val, tc.arch = "convnet-d2-w8";
    tc.out = at + "-student", tc.epochs = 4, tc.device = device, tc.amp = amp;
    tc.channels_last = sq.channels_last;
    const auto t = train::train_student(tc, Progress::null());  // a non-finite loss throws
    EXPECT_GE(t.steps, 4) << choice_name(amp);
  }
}
