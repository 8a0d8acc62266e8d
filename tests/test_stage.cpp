// The stage skeleton (core/stage.h, core/stage_output.h), shown by a toy stage: one config with
// its options, one runner, one descriptor -- and the output life every stage shares: lock,
// resume, reuse of a finished run, another run's output refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "core/io.h"
#include "core/stage.h"
#include "core/stage_output.h"
#include "test_util.h"

namespace lpld {
namespace {

// The toy stage: the sum 1 + 2 + ... + n into --out, one term per step, its state saved after
// each; `fail_after` stops it there as a kill would.
struct ToyConfig {
  int64_t n = 3, fail_after = -1;  // -1: never
  std::string out;
  void declare(OptionSet& o) {
    o.add("n", &n, "terms").add("out", &out, "folder").add("fail_after", &fail_after, "kill");
  }
};
struct ToyResult {
  int64_t sum = 0, resumed_at = 0;
  bool reused = false;
  json to_json() const { return {{"sum", sum}, {"resumed_at", resumed_at}, {"reused", reused}}; }
};

ToyResult toy_run(const ToyConfig& c, Progress&) {
  StageOutput output("toy", c.out, StageOutput::Kind::kFolder, "toy.state", {{"n", c.n}}, nullptr);
  ToyResult r;
  if (auto done = output.finished()) return {done->at("sum"), 0, true};
  if (file_exists(output.state_path())) {
    const json s = read_json(output.state_path());
    r.sum = s.at("sum"), r.resumed_at = s.at("i");
  }
  for (int64_t i = r.resumed_at + 1; i <= c.n; ++i) {
    if (i - 1 == c.fail_after) throw std::runtime_error("killed");
    r.sum += i;
    write_json(output.state_path(), {{"sum", r.sum}, {"i", i}});
  }
  output.publish([&] { write_file_atomic(c.out + "/sum.txt", std::to_string(r.sum)); },
                 r.to_json());
  return r;
}

std::string toy_summary(const ToyConfig& c, const ToyResult& r, const DistEnv& env) {
  return "toy " + std::to_string(c.n) + " -> " + std::to_string(r.sum) +
         (env.rank > 0 ? " (rank > 0)" : "");
}

const StageDescriptor& toy_stage() {
  static const StageDescriptor d = make_stage<ToyConfig, ToyResult>(
      "toy", "sums 1..n", "", /*distributed=*/false, toy_run, toy_summary);
  return d;
}

TEST(Stage, AToyStageRunsFromItsDescriptorWithOptionsFromFlagsAndYaml) {
  test::TempDir dir;
  const StageDescriptor& d = toy_stage();
  EXPECT_EQ(d.name, "toy");
  const auto config = d.make_config();
  EXPECT_FALSE(config->has_recipes());
  config->apply_yaml(YAML::Load("n: 5\nout: " + dir.path("out")), "toy.yaml");
  config->options().set("n", "4");  // a flag after the file wins
  EXPECT_THROW(config->apply_yaml(YAML::Load("m: 1"), "toy.yaml"), std::invalid_argument);

  const StageRun run = run_stage(*config, Progress::null(), dir.path("result.json"));
  EXPECT_EQ(run.summary, "toy 4 -> 10");
  EXPECT_EQ(run.result["sum"], 10);
  EXPECT_EQ(run.result["config"]["n"], 4);  // the resolved config, recorded
  EXPECT_TRUE(run.result.contains("runtime"));
  EXPECT_EQ(read_json(dir.path("result.json")), run.result);
  EXPECT_EQ(read_file(dir.path("out/sum.txt")), "10");
  // Published: the output's result.json with its identity; state and lock gone.
  EXPECT_EQ(read_json(dir.path("out/result.json"))["identity"], json({{"n", 4}}));
  EXPECT_FALSE(file_exists(dir.path("out/toy.state")));
  EXPECT_FALSE(file_exists(dir.path("out/.lock")));
}

TEST(Stage, TheOutputLifeResumesReusesAndRefusesAnotherRun) {
  test::TempDir dir;
  ToyConfig c;
  c.n = 6, c.fail_after = 2, c.out = dir.path("out");
  EXPECT_THROW(toy_run(c, Progress::null()), std::runtime_error);
  EXPECT_EQ(read_json(dir.path("out/toy.state"))["i"], 2);

  c.fail_after = -1;  // (the failed run's lock went with it: the next run claims the folder)
  const ToyResult resumed = toy_run(c, Progress::null());
  EXPECT_EQ(resumed.resumed_at, 2);
  EXPECT_EQ(resumed.sum, 21);
  const ToyResult reused = toy_run(c, Progress::null());
  EXPECT_TRUE(reused.reused);
  EXPECT_EQ(reused.sum, 21);

  c.n = 7;  // another run into the same folder
  try {
    toy_run(c, Progress::null());
    FAIL() << "another run's output was not refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path("out")), std::string::npos) << e.what();
  }
}

TEST(Stage, ASecondProcessOnTheSameOutputFailsNamingIt) {
  test::TempDir dir;
  StageOutput first("toy", dir.path("out"), StageOutput::Kind::kFile, "state", 1, nullptr);
  try {
    StageOutput second("toy", dir.path("out"), StageOutput::Kind::kFile, "state", 1, nullptr);
    FAIL() << "the second claim was not refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path("out")), std::string::npos) << e.what();
  }
  first.publish([&] { write_file_atomic(dir.path("out"), "x"); });
  EXPECT_FALSE(file_exists(dir.path("out.lock")));
  StageOutput third("toy", dir.path("out"), StageOutput::Kind::kFile, "state", 1, nullptr);
  EXPECT_FALSE(third.finished());  // a file output has no result.json to reuse
}

}  // namespace
}  // namespace lpld
