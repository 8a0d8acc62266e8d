// Student training: the label pool and its draws (METHOD.md Stage 4), replay, resume,
// input checks, online labels.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/io.h"
#include "core/safetensors.h"
#include "fixtures.h"
#include "recover/recover.h"
#include "relabel/relabel.h"
#include "train/label_pool.h"
#include "train/student.h"

using namespace lpld;
namespace fs = std::filesystem;

TEST(LabelPool, BatchToEpochRandomDrawsWithReplacementFromThePool) {
  train::PoolSpec p;
  p.pool_steps = 37;
  p.batches_per_epoch = 5;
  p.stored_epochs = 300;
  p.seed = 3;
  std::set<int64_t> used;
  bool repeat_within_epoch = false;
  for (int64_t e = 0; e < 300; ++e) {
    auto s = train::draw_epoch_steps(p, e);
    ASSERT_EQ(s.size(), 5u);
    std::set<int64_t> uniq(s.begin(), s.end());
    repeat_within_epoch = repeat_within_epoch || uniq.size() < s.size();
    for (auto id : s) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, 37);
      used.insert(id);
    }
    EXPECT_EQ(s, train::draw_epoch_steps(p, e));  // reproducible
  }
  EXPECT_EQ(used.size(), 37u);  // every pooled batch is usable (official code: not so)
  EXPECT_TRUE(repeat_within_epoch);
}

TEST(LabelPool, OrderReplaysEverythingAndOtherGranularities) {
  train::PoolSpec p;
  p.pool_steps = 15;
  p.batches_per_epoch = 5;
  p.stored_epochs = 3;
  p.metric = "order";
  EXPECT_EQ(train::draw_epoch_steps(p, 1), (std::vector<int64_t>{5, 6, 7, 8, 9}));
  EXPECT_EQ(train::draw_epoch_steps(p, 3), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  p.granularity = "epoch";
  p.metric = "random";
  p.pool_steps = 10;  // two whole epochs
  for (int64_t e = 0; e < 20; ++e) {
    auto s = train::draw_epoch_steps(p, e);
    EXPECT_TRUE(s.front() == 0 || s.front() == 5);
    EXPECT_EQ(s.back(), s.front() + 4);
  }
  p.granularity = "batch";
  p.pool_steps = 7;
  std::vector<int> count(7, 0);
  for (int64_t e = 0; e < 7; ++e)
    for (auto id : train::draw_epoch_steps(p, e)) ++count[id];
  for (int c : count) EXPECT_EQ(c, 5);  // 35 draws = 5 full passes without replacement
  p.granularity = "stripes";
  EXPECT_THROW(train::validate_pool(p), std::invalid_argument);
}

TEST(LabelPool, RuleScoresAndSelection) {
  auto probs = torch::tensor({{0.7, 0.2, 0.1}, {0.1, 0.3, 0.6}}, torch::kFloat64);
  auto labels = torch::tensor({0, 1}, torch::kInt64);
  EXPECT_DOUBLE_EQ(train::rule_score("correct", probs, labels, 1), 0.5);
  EXPECT_NEAR(train::rule_score("confidence", probs, labels, 1), 0.65, 1e-12);
  EXPECT_NEAR(train::rule_score("diff", probs, labels, 1), (0.5 + 0.3) / 2, 1e-12);
  EXPECT_NEAR(train::rule_score("diff_signed", probs, labels, 1), (0.5 - 0.3) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(train::rule_score("cut_ratio", probs, labels, 0.25), 0.25);
  std::vector<double> scores = {0.5, 0.9, 0.1, 0.7};
  EXPECT_EQ(train::select_by_score(scores, 2, true), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(train::select_by_score(scores, 2, false), (std::vector<int64_t>{0, 2}));
  EXPECT_TRUE(train::is_rule_metric("diff_signed_hard"));
  EXPECT_FALSE(train::is_rule_metric("diff_medium"));
  train::PoolSpec p;
  p.metric = "confidence_easy";
  p.pool_steps = 2;
  p.batches_per_epoch = 10;
  p.selected = {1, 3};
  for (auto id : train::draw_epoch_steps(p, 0)) EXPECT_TRUE(id == 1 || id == 3);
}

namespace {
struct Labelled {
  std::string images, labels, labels_other;
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
    lc.batch_size = 4;
    lc.prune_ratio = 0.5;
    relabel::relabel(lc, Progress::null());
    labels = lc.out;
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

TEST(Train, OnlineLabels) {
  test::TempDir dir;
  auto c = small(dir.path("online"));
  c.labels = "online";
  c.teacher = test::toy().teacher;
  c.prune_ratio = 0;
  c.batch_size = 4;
  auto r = train::train_student(c, Progress::null());
  EXPECT_EQ(r.steps, 30 * 3);
  EXPECT_GT(r.top1, 50.0);
}
