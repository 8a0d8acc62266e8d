// The one-command pipeline on a toy 3-class set, and every CLI stage end to end.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "analyze/analyze.h"
#include "core/io.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "fixtures.h"
#include "models/checkpoint.h"
#include "pipeline/pipeline.h"
#include "recover/recover.h"
#include "relabel/relabel.h"
#include "squeeze/squeeze.h"
#include "train/student.h"

using namespace lpld;
namespace fs = std::filesystem;

namespace {
std::string toy_yaml(const std::string& path, const std::string& extra = "") {
  std::ofstream(path) << "modes: [class, mixed]\nipcs: [2]\nprune_ratios: [0, 0.5]\nseeds: [0]\n"
                      << "squeeze: {data: '" << test::toy().train << "', val: '" << test::toy().val
                      << "', arch: convnet-d2-w8, epochs: 3, batch_size: 16}\n"
                      << "recover: {iterations: 10}\n"
                      << "relabel: {epochs: 4, batch_size: 2}\n"
                      << "train: {arch: convnet-d2-w8, lr: 0.003}\n"
                      << extra;
  return path;
}

int run(const std::string& args, std::string* output = nullptr) {
  const char* bin = std::getenv("LPLD_BINARY");
  const std::string log = "/tmp/lpld-cli-" + std::to_string(::getpid()) + ".txt";
  const std::string cmd = std::string(bin) + " --quiet " + args + " > " + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  if (output) *output = read_file(log);
  std::remove(log.c_str());
  return WEXITSTATUS(rc);
}
}  // namespace

TEST(Pipeline, TinyEndToEndWritesAWellFormedSummaryAndResumes) {
  test::TempDir dir;
  auto config = pipeline::load_pipeline_config(toy_yaml(dir.path("p.yaml")));
  auto r = pipeline::run_pipeline(config, dir.path("run"), Progress::null());
  const auto& s = r.summary;
  ASSERT_EQ(s["runs"].size(), 4u);
  for (const auto& run : s["runs"]) {  // each figure is the one of the files it describes
    const std::string tag =
        fmt::format("{}-ipc{}", run["mode"].get<std::string>(), run["ipc"].get<int64_t>());
    const std::string ratio = fmt::format("r{:g}", run["prune_ratio"].get<double>());
    EXPECT_EQ(run["label_bytes"].get<uint64_t>(),
              fs::file_size(dir.path("run/labels/" + tag + "-" + ratio + ".lpld")));
    int64_t png_bytes = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir.path("run/images/" + tag)))
      if (e.path().extension() == ".png") png_bytes += static_cast<int64_t>(e.file_size());
    EXPECT_EQ(run["image_bytes"].get<int64_t>(), png_bytes);
    const json result = read_json(dir.path("run/runs/" + tag + "-" + ratio + "-s0/result.json"));
    EXPECT_EQ(run["student_top1"].get<double>(), result.at("top1").get<double>());
  }
  for (const char* k : {"squeeze", "recover", "relabel", "train", "total"})
    EXPECT_TRUE(s["seconds"].contains(k));
  EXPECT_GT(s["teacher"]["top1"].get<double>(), 50.0);
  EXPECT_EQ(s["num_classes"], 3);
  EXPECT_EQ(s["teacher"]["arch"], "convnet-d2-w8");
  EXPECT_TRUE(fs::exists(dir.path("run/summary.json")));
  EXPECT_TRUE(fs::exists(dir.path("run/images.png")));
  EXPECT_NE(read_file(dir.path("run/summary.md")).find("| class | 2 | 2x |"), std::string::npos);

  // Kill-and-resume: a lost student run and summary are redone, nothing else.
  const auto teacher_time = fs::last_write_time(dir.path("run/teacher.safetensors"));
  const auto store_time = fs::last_write_time(dir.path("run/labels/class-ipc2-r0.lpld"));
  const std::string kept_run = dir.path("run/runs/class-ipc2-r0-s0/result.json");
  ASSERT_TRUE(fs::exists(kept_run));
  const auto kept_time = fs::last_write_time(kept_run);
  fs::remove_all(dir.path("run/runs/class-ipc2-r0.5-s0"));
  fs::remove(dir.path("run/summary.json"));
  auto again = pipeline::run_pipeline(config, dir.path("run"), Progress::null());
  EXPECT_EQ(fs::last_write_time(dir.path("run/teacher.safetensors")), teacher_time);
  EXPECT_EQ(fs::last_write_time(dir.path("run/labels/class-ipc2-r0.lpld")), store_time);
  EXPECT_EQ(again.summary["seconds"]["squeeze"],
            s["seconds"]["squeeze"]);                   // the reused teacher's cost
  EXPECT_EQ(fs::last_write_time(kept_run), kept_time);  // a finished student is not retrained
  EXPECT_TRUE(fs::exists(dir.path("run/runs/class-ipc2-r0.5-s0/result.json")));  // redone
  for (size_t i = 0; i < 4; ++i)
    EXPECT_DOUBLE_EQ(again.summary["runs"][i]["student_top1"].get<double>(),
                     s["runs"][i]["student_top1"].get<double>());
}

TEST(Analyze, WithinClassSimilarityOfKnownFeatures) {
  // class 0: identical features (1.0); class 1: two orthogonal vectors (0.0)
  auto f = torch::tensor({{1.0, 2.0}, {2.0, 4.0}, {1.0, 0.0}, {0.0, 3.0}});
  auto l = torch::tensor({0, 0, 1, 1}, torch::kInt64);
  auto s = analyze::within_class_similarity(f, l, 2);
  EXPECT_NEAR(s.per_class[0], 1.0, 1e-9);
  EXPECT_NEAR(s.per_class[1], 0.0, 1e-9);
  EXPECT_NEAR(s.overall, 0.5, 1e-9);
}

TEST(Analyze, SyntheticAndRealSetsOfTheToyTeacher) {
  test::TempDir dir;
  auto config = pipeline::load_pipeline_config(toy_yaml(dir.path("p.yaml")));
  config.modes = {"class"};
  config.prune_ratios = {0.5};
  pipeline::run_pipeline(config, dir.path("run"), Progress::null());
  analyze::AnalyzeConfig a;
  a.model = dir.path("run/teacher.safetensors");
  a.images = dir.path("run/images/class-ipc2");
  a.real = test::toy().val;
  a.labels = {dir.path("run/labels/class-ipc2-r0.5.lpld")};
  auto r = analyze::analyze(a, Progress::null());
  EXPECT_EQ(r.images, 6);
  EXPECT_EQ(r.synthetic.per_class.size(), 3u);
  EXPECT_EQ(r.real.per_class.size(), 3u);
  EXPECT_GT(r.synthetic.overall, -1.0);
  EXPECT_LE(r.synthetic.overall, 1.0);
  ASSERT_EQ(r.storage.size(), 1u);
  EXPECT_GT(r.storage[0]["label_bytes"].get<uint64_t>(), 0u);
}

TEST(Pipeline, ConfigErrorsNameTheKey) {
  test::TempDir dir;
  try {
    pipeline::load_pipeline_config(toy_yaml(dir.path("p.yaml"), "relabel_typo: 3\n"));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("relabel_typo"), std::string::npos);
  }
  std::ofstream(dir.path("q.yaml")) << "modes: [class]\nrecover: {iterationz: 3}\n";
  try {
    pipeline::load_pipeline_config(dir.path("q.yaml"));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("iterationz"), std::string::npos);
  }
  std::ofstream(dir.path("r.yaml")) << "prune_ratios: [0, 1.5]\n";
  EXPECT_THROW(pipeline::load_pipeline_config(dir.path("r.yaml")), std::invalid_argument);
  // an option the pipeline sets itself would be overwritten: an error naming it and its source
  std::ofstream(dir.path("s.yaml")) << "train: {arch: convnet-d2-w8, epochs: 100}\n";
  test::expect_throw_with<std::invalid_argument>(
      [&] { pipeline::load_pipeline_config(dir.path("s.yaml")); },
      {"s.yaml: train: epochs", "relabel.epochs"});
  std::ofstream(dir.path("t.yaml")) << "recover: {ipc: 50}\n";
  test::expect_throw_with<std::invalid_argument>(
      [&] { pipeline::load_pipeline_config(dir.path("t.yaml")); }, {"recover: ipc", "ipcs"});
  // a stage the pipeline does not run (from the stage descriptors): named as such
  std::ofstream(dir.path("u.yaml")) << "import: {from: w.pt}\n";
  test::expect_throw_with<std::invalid_argument>(
      [&] { pipeline::load_pipeline_config(dir.path("u.yaml")); },
      {"u.yaml: import: the pipeline does not run import", "lpld import"});
}

// The configs the README and the benches point users to stay valid as options change.
TEST(Pipeline, EveryShippedConfigLoads) {
  int loaded = 0;
  for (const char* dir : {"configs", "bench/configs"})
    for (const auto& e : fs::directory_iterator(std::string(LPLD_SOURCE_DIR) + "/" + dir)) {
      if (e.path().extension() != ".yaml") continue;
      EXPECT_NO_THROW(pipeline::load_pipeline_config(e.path().string())) << e.path();
      ++loaded;
    }
  EXPECT_GE(loaded, 3);
  const auto in1k = pipeline::load_pipeline_config(std::string(LPLD_SOURCE_DIR) +
                                                   "/configs/imagenet1k-ipc10.yaml");
  EXPECT_EQ(in1k.recover.recipe, "auto");  // resolved from the teacher when the run starts
  EXPECT_EQ(in1k.prune_ratios, std::vector<double>{0.975});
}

TEST(Cli, EveryStageRunsEndToEndAndBadInputExitsNonZero) {
  if (std::getenv("LPLD_BINARY") == nullptr) GTEST_SKIP() << "LPLD_BINARY not set";
  test::TempDir dir;
  const std::string d = dir.path();
  std::string out;
  ASSERT_EQ(run("squeeze --data " + test::toy().train + " --val " + test::toy().val +
                    " --arch convnet-d2-w8 --epochs 2 --batch-size 16 --out " + d +
                    "/t.safetensors --json " + d + "/sq.json",
                &out),
            0)
      << out;
  EXPECT_TRUE(read_json(d + "/sq.json").contains("images_per_second"));
  ASSERT_EQ(run("eval --model " + d + "/t.safetensors --data " + test::toy().val + " --json " + d +
                    "/ev.json",
                &out),
            0)
      << out;
  EXPECT_TRUE(read_json(d + "/ev.json").contains("top5"));
  ASSERT_EQ(
      run("recover --teacher " + d + "/t.safetensors --ipc 2 --iterations 5 --mode mixed --out " +
              d + "/img --json " + d + "/rc.json",
          &out),
      0)
      << out;
  ASSERT_EQ(run("relabel --teacher " + d + "/t.safetensors --images " + d +
                    "/img --epochs 3 --batch-size 2 --prune-ratio 0.5 --cutmix 0.5 --out " + d +
                    "/l.lpld",
                &out),
            0)
      << out;
  ASSERT_EQ(run("labels info " + d + "/l.lpld", &out), 0) << out;
  EXPECT_NE(out.find("steps kept 4 of 9"), std::string::npos) << out;
  EXPECT_NE(out.find("alpha 0.5"), std::string::npos) << out;
  ASSERT_EQ(run("labels verify " + d + "/l.lpld", &out), 0) << out;
  ASSERT_EQ(run("train --images " + d + "/img --labels " + d + "/l.lpld --val " + test::toy().val +
                    " --arch convnet-d2-w8 --epochs 3 --prune-ratio 0.5 --out " + d + "/s --json " +
                    d + "/tr.json",
                &out),
            0)
      << out;
  EXPECT_TRUE(read_json(d + "/tr.json").contains("top1"));
  std::ofstream(d + "/p.yaml") << "ipcs: [1]\nprune_ratios: [0]\nsqueeze: {data: '"
                               << test::toy().train << "', val: '" << test::toy().val
                               << "', arch: convnet-d2-w8, epochs: 1}\n"
                               << "recover: {iterations: 2}\nrelabel: {epochs: 2, batch_size: "
                                  "3}\ntrain: {arch: convnet-d2-w8}\n";
  ASSERT_EQ(run("pipeline --config " + d + "/p.yaml --out " + d + "/run", &out), 0) << out;
  EXPECT_NE(out.find("| class | 1 | 1x |"), std::string::npos) << out;

  // bad input: one line naming the problem, non-zero exit
  EXPECT_NE(run("squeeze --data nosuchset:x --out " + d + "/x.safetensors", &out), 0);
  EXPECT_NE(out.find("nosuchset"), std::string::npos) << out;
  EXPECT_NE(run("eval --model " + d + "/missing.safetensors --data " + test::toy().val, &out), 0);
  EXPECT_NE(out.find("missing.safetensors"), std::string::npos) << out;
  std::ofstream(d + "/broken.lpld") << "LPLDLBL1 but not really";
  EXPECT_NE(run("labels verify " + d + "/broken.lpld", &out), 0);
  EXPECT_NE(run("recover --teacher " + d + "/t.safetensors --ipc 0 --out " + d + "/y", &out), 0);
  EXPECT_NE(out.find("--ipc"), std::string::npos) << out;
  EXPECT_NE(run("train --images " + d + "/img --labels " + d +
                    "/l.lpld --granularity stripes --out " + d + "/z",
                &out),
            0);
  EXPECT_NE(out.find("--granularity"), std::string::npos) << out;
}

// The error contract (issue: nothing silently wrong): every failure is one line
// `lpld: error: <file or option>: <problem>` and exit 1 (runtime, data) or 2 (usage), with no
// backtrace; CLI11 and yaml-cpp errors included.
TEST(Cli, EveryFailureIsOneLineNamingItsCauseWithExitOneOrTwo) {
  if (std::getenv("LPLD_BINARY") == nullptr) GTEST_SKIP() << "LPLD_BINARY not set";
  test::TempDir dir;
  const std::string d = dir.path();
  auto check = [&](const std::string& args, int status, const std::string& names) {
    std::string out;
    EXPECT_EQ(run(args, &out), status) << args << "\n" << out;
    EXPECT_EQ(out.rfind("lpld: error: ", 0), 0u) << args << "\n" << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << args << "\n" << out;
    EXPECT_NE(out.find(names), std::string::npos) << args << "\n" << out;
    EXPECT_EQ(out.find("Exception raised from"), std::string::npos) << out;  // no backtrace
  };
  check("frobnicate --x 1", 2, "'frobnicate' is not a command");
  check("squeeze --no-such-flag", 2, "--no-such-flag");
  check("squeeze --epochs many --out x", 2, "--epochs");
  check("--threads 0 squeeze --out x", 2, "--threads");
  check("--threads 99999 squeeze --out x", 2, "--threads");
  check("--threads -1 squeeze --out x", 2, "--threads");
  // choices: each flag names its own (a recover flag once named relabel's codecs)
  check("recover --mode both --teacher t --out x", 2, "--mode: must be class or mixed, not 'both'");
  check(
      "relabel --logits int2 --teacher t --images i --out x", 2,
      "--logits: must be fp32, fp16, bf16, int8, int4, int8-max, int4-max or int2-max, not 'int2'");
  std::ofstream(d + "/mode.yaml") << "mode: both\n";
  check("recover --config " + d + "/mode.yaml --teacher t --out x", 2,
        "mode: must be class or mixed, not 'both'");
  std::ofstream(d + "/dup.yaml") << "epochs: 3\nlr: 0.1\nepochs: 4\n";
  check("squeeze --config " + d + "/dup.yaml --out x", 2, "epochs: given twice");
  std::ofstream(d + "/loop.yaml") << "data: &a [*a]\n";
  check("squeeze --config " + d + "/loop.yaml --out x", 2, "loop.yaml");
  std::ofstream(d + "/broken.yaml") << "epochs: [1, 2\n";
  check("squeeze --config " + d + "/broken.yaml --out x", 1, "broken.yaml");
  check("eval --model " + d + "/missing.safetensors --data " + test::toy().val, 1,
        "missing.safetensors");
  // a checkpoint whose shape overflows: libtorch would throw with a backtrace and no file name
  const std::string bad = d + "/overflow.safetensors";
  const std::string header =
      R"({"model.x":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,0]}})";
  std::string text = header;
  while (text.size() % 8) text.push_back(' ');
  const uint64_t n = text.size();
  write_file_atomic(bad, std::string(reinterpret_cast<const char*>(&n), 8) + text);
  check("eval --model " + bad + " --data " + test::toy().val, 1, "overflow.safetensors");
}

// An image folder entry that cannot be read (a symlink loop, a dangling link) is an error
// naming it, not a silently smaller data set.
TEST(Cli, UnreadableImageFolderEntriesAreErrors) {
  test::TempDir dir;
  test::make_toy_folder(dir.path("f"), 2, 1);
  fs::create_symlink("loop", dir.path("f/train/hstripes/loop.png"));
  try {
    data::load_into_memory(data::open_dataset("imagefolder:" + dir.path("f/train")));
    FAIL() << "a symlink loop was skipped";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("loop.png"), std::string::npos) << e.what();
  }
}

// More than 1000 classes (issue: ImageNet scale): class folders sort in class order (their
// numbers are padded to the digits of C - 1) and class indices come from recover's manifest,
// so a 1,001-class run gives the same student whatever the classes are called.
TEST(Pipeline, ThousandAndOneClassesGiveTheSameStudentUnderAnyNames) {
  test::TempDir dir;
  const int64_t C = 1001;
  Rng rng(5);
  for (int64_t c = 0; c < C; ++c)
    for (int i = 0; i < 2; ++i) {
      auto img = torch::empty({1, 8, 8}, torch::kUInt8);
      for (int64_t k = 0; k < 64; ++k)
        img.data_ptr<uint8_t>()[k] = static_cast<uint8_t>(rng.below(256));
      data::write_png(fmt::format("{}/data/c{:04d}/{}.png", dir.path(), c, i), img);
    }
  squeeze::SqueezeConfig sq;
  sq.data = sq.val = "imagefolder:" + dir.path("data");
  sq.arch = "convnet-d1-w4", sq.epochs = 1, sq.batch_size = 50, sq.norm = "0.5/0.25";
  sq.out = dir.path("a.safetensors");
  squeeze::squeeze(sq, Progress::null());
  // the same teacher under other names, in another order
  auto ck = models::load_checkpoint(sq.out, torch::kCPU);
  for (int64_t c = 0; c < C; ++c) ck.meta.class_names[c] = fmt::format("name{}", (c * 7919) % C);
  models::save_checkpoint(dir.path("b.safetensors"), ck);
  std::map<std::string, torch::Tensor> students[2];
  for (int k = 0; k < 2; ++k) {
    const std::string tag = k ? "b" : "a";
    recover::RecoverConfig rc;
    rc.teacher = dir.path(tag + ".safetensors"), rc.out = dir.path(tag + "-img");
    rc.ipc = 1, rc.iterations = 2;
    recover::recover(rc, Progress::null());
    relabel::RelabelConfig lc;
    lc.teacher = rc.teacher, lc.images = rc.out, lc.out = dir.path(tag + ".lpld");
    lc.epochs = 2, lc.views.batch_size = 50;
    relabel::relabel(lc, Progress::null());
    train::TrainConfig tc;
    tc.images = rc.out, tc.labels = lc.out, tc.val = sq.val, tc.arch = "convnet-d1-w4";
    tc.epochs = 2, tc.out = dir.path(tag + "-student");
    train::train_student(tc, Progress::null());
    students[k] = load_safetensors(tc.out + "/student.safetensors").tensors;
  }
  // folder names sort in class order
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(dir.path("b-img")))
    if (e.is_directory() && e.path().filename().string()[0] != '.')
      dirs.push_back(e.path().filename().string());
  std::sort(dirs.begin(), dirs.end());
  ASSERT_EQ(dirs.size(), 1001u);
  EXPECT_EQ(dirs[999].substr(0, 5), "0999_");
  EXPECT_EQ(dirs[1000].substr(0, 5), "1000_");
  ASSERT_EQ(students[0].size(), students[1].size());
  for (const auto& [name, t] : students[0])
    EXPECT_TRUE(torch::equal(t, students[1].at(name))) << name;
}
