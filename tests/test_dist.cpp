// Distributed runs over c10d (Gloo on 127.0.0.1, a TCPStore rendezvous): recover over 2 and
// 3 processes writes the same images as one process, byte for byte; a rank that cannot reach
// the store stops with the address; a rank whose peer dies stops with an error instead of
// hanging, and the re-run of a relabel, squeeze or train with a killed rank resumes into the
// uninterrupted run's bytes; commands that run as one process refuse torchrun's environment.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "core/dist.h"
#include "core/io.h"
#include "engine/data_parallel.h"
#include "fixtures.h"
#include "labels/label_store.h"
#include "models/checkpoint.h"
#include "process.h"

using namespace lpld;
namespace fs = std::filesystem;

namespace {

std::string bin() { return test::lpld_binary(); }

using test::finish;

// Starts the binary (--quiet, one thread) with `env` added; stderr goes to `log`.
pid_t spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
            const std::string& log) {
  std::vector<std::string> all = {bin(), "--quiet", "--threads", "1"};
  all.insert(all.end(), args.begin(), args.end());
  return test::spawn(all, log, env);
}

int run(const std::vector<std::string>& args, const std::string& log,
        const std::map<std::string, std::string>& env = {}) {
  return finish(spawn(args, env, log));
}

// `args` under `lpld launch -n N`.
std::vector<std::string> launched(const std::string& n, std::vector<std::string> args) {
  args.insert(args.begin(), {"launch", "-n", n, "--"});
  return args;
}

// Starts `args` as ranks 0 and 1 of 2 (a fresh port on 127.0.0.1), logging to DIR/r0.log
// and DIR/r1.log; returns their pids.
std::pair<pid_t, pid_t> spawn_two_ranks(const std::vector<std::string>& args,
                                        const test::TempDir& dir) {
  const std::map<std::string, std::string> base = {
      {"WORLD_SIZE", "2"},
      {"MASTER_ADDR", "127.0.0.1"},
      {"MASTER_PORT", std::to_string(free_local_port())}};
  auto env0 = base, env1 = base;
  env0["RANK"] = "0", env1["RANK"] = "1";
  return {spawn(args, env0, dir.path("r0.log")), spawn(args, env1, dir.path("r1.log"))};
}

// Kills `victim`; the `survivor` (rank `rank`) must then stop with exit 1 and name its place
// in its log, not wait for ever (a wait fails the test through CTest's timeout).
void expect_the_survivor_stops(pid_t victim, pid_t survivor, int rank, const test::TempDir& dir) {
  kill(victim, SIGKILL);
  finish(victim);
  const std::string log = dir.path("r" + std::to_string(rank) + ".log");
  EXPECT_EQ(finish(survivor), 1) << read_file(log);
  EXPECT_NE(read_file(log).find("rank " + std::to_string(rank) + " of 2"), std::string::npos)
      << read_file(log);
}

std::vector<std::string> recover_args(const std::string& mode, const std::string& pack,
                                      const std::string& out) {
  return {"recover", "--teacher",    test::toy().teacher,
          "--mode",  mode,           "--ipc",
          "4",       "--iterations", "40",
          "--pack",  pack,           "--out",
          out};
}

// `units`: how many units (of 3 classes x 4 images) the one-process run optimizes; with N
// processes rank 0 optimizes only its groups (group g goes to rank g mod N), `rank0[N]`.
void expect_same_folder_from_n_processes(const std::string& mode, const std::string& pack,
                                         int64_t units,
                                         const std::map<std::string, int64_t>& rank0) {
  test::TempDir dir;
  auto single = recover_args(mode, pack, dir.path("one"));
  single.insert(single.end(), {"--json", dir.path("one.json")});
  ASSERT_EQ(run(single, dir.path("one.log")), 0) << read_file(dir.path("one.log"));
  const auto one = test::png_bytes(dir.path("one"));
  ASSERT_EQ(one.size(), 12u);
  EXPECT_EQ(read_json(dir.path("one.json"))["units_optimized"].get<int64_t>(), units);
  for (const char* n : {"2", "3"}) {
    const std::string out = dir.path(std::string("n") + n), log = out + ".log";
    auto args = launched(n, recover_args(mode, pack, out));
    args.insert(args.end(), {"--json", out + ".json"});
    ASSERT_EQ(run(args, log), 0) << read_file(log);
    EXPECT_EQ(read_json(out + ".json")["units_optimized"].get<int64_t>(), rank0.at(n))
        << "rank 0 did not leave the other ranks their share";
    EXPECT_TRUE(test::png_bytes(out) == one) << n << " processes wrote other images than one";
    EXPECT_TRUE(read_json(out + "/manifest.json")["complete"].get<bool>());
    EXPECT_FALSE(fs::exists(out + "/.units")) << "unit files left behind";
  }
}

}  // namespace

// Class mode in packs of 2 classes: the groups of the one-process run are dealt out whole.
TEST(Dist, ClassModeRecoverOverTwoAndThreeProcessesEqualsOneProcess) {
  LPLD_REQUIRE_BINARY();
  // 3 units in groups {0, 1}, {2}: rank 0 has 2 with 2 processes, 1 with 3 (the third: none)
  expect_same_folder_from_n_processes("class", "2", 3, {{"2", 2}, {"3", 2}});
}

// Mixed mode: every batch holds every class, so ranks share classes; rank 0 publishes.
TEST(Dist, MixedModeRecoverOverTwoAndThreeProcessesEqualsOneProcess) {
  LPLD_REQUIRE_BINARY();
  // 4 units (one per image index), one per group: rank 0 has groups 0, 2 / 0, 3
  expect_same_folder_from_n_processes("mixed", "1", 4, {{"2", 2}, {"3", 2}});
}

// relabel over 2 and 3 processes: each rank writes its forward groups' records at their
// offsets of one store, which is the one-process store byte for byte; a killed run's partial
// store is resumed by a run with another number of processes.
TEST(Dist, RelabelOverTwoAndThreeProcessesWritesTheOneProcessStore) {
  LPLD_REQUIRE_BINARY();
  test::TempDir dir;
  ASSERT_EQ(run(recover_args("class", "1", dir.path("img")), dir.path("r.log")), 0)
      << read_file(dir.path("r.log"));
  auto relabel = [&](const std::string& out) {
    // 12 images in steps of 5, 5, 2 per epoch; forwards of 2 steps
    return std::vector<std::string>{"relabel",
                                    "--teacher",
                                    test::toy().teacher,
                                    "--images",
                                    dir.path("img"),
                                    "--epochs",
                                    "7",
                                    "--batch-size",
                                    "5",
                                    "--forward-batch",
                                    "10",
                                    "--logits",
                                    "int8",
                                    "--out",
                                    out};
  };
  ASSERT_EQ(run(relabel(dir.path("one.lpld")), dir.path("one.log")), 0)
      << read_file(dir.path("one.log"));
  const std::string one = read_file(dir.path("one.lpld"));
  for (const char* n : {"2", "3"}) {
    const std::string out = dir.path(std::string("n") + n + ".lpld"), log = out + ".log";
    auto args = launched(n, relabel(out));
    args.insert(args.end(), {"--json", out + ".json"});
    ASSERT_EQ(run(args, log), 0) << read_file(log);
    EXPECT_TRUE(read_file(out) == one) << n << " processes wrote another store than one";
    EXPECT_EQ(read_json(out + ".json")["labelled_views"].get<int64_t>(), 7 * 12)
        << "rank 0 reported its share only";
    EXPECT_FALSE(fs::exists(out + ".partial"));
    EXPECT_FALSE(fs::exists(out + ".lock"));
  }
  // A partial store with two forward groups' records damaged, as a killed 2-process run
  // leaves holes: two processes label those groups alone (steps 0-1 and 6-7, 20 views).
  const std::string out = dir.path("holes.lpld");
  {
    labels::LabelStore s(dir.path("one.lpld"));
    std::string bytes = one;
    bytes.replace(0, 8, "LPLDPART");  // a partial file's magic (labels/label_store.cpp)
    for (int64_t step : {1, 6})
      bytes[labels::record_offset(s.header(), s.header_bytes(), step) + 3] ^= 0x5a;
    write_file_atomic(out + ".partial", bytes);
  }
  auto args = launched("2", relabel(out));
  args.insert(args.end(), {"--json", out + ".json"});
  ASSERT_EQ(run(args, out + ".log"), 0) << read_file(out + ".log");
  EXPECT_TRUE(read_file(out) == one) << "the resumed store differs";
  EXPECT_EQ(read_json(out + ".json")["labelled_views"].get<int64_t>(), 20);
}

// The class-statistics pass over 2 and 3 processes (each rank every N-th batch, the float64
// sums added over the ranks) gives the one-process statistics to float64 summation order.
TEST(Dist, SqueezeClassStatisticsOverTwoAndThreeProcessesEqualOneProcess) {
  LPLD_REQUIRE_BINARY();
  test::TempDir dir;
  auto squeeze = [&](const std::string& out) {
    return std::vector<std::string>{
        "squeeze",         "--init", test::toy().teacher, "--epochs", "0", "--data",
        test::toy().train, "--val",  test::toy().val,     "--out",    out};
  };
  ASSERT_EQ(run(squeeze(dir.path("one.safetensors")), dir.path("one.log")), 0)
      << read_file(dir.path("one.log"));
  const auto one = models::load_checkpoint(dir.path("one.safetensors"), torch::kCPU).class_stats;
  ASSERT_FALSE(one.empty());
  for (const char* n : {"2", "3"}) {
    const std::string out = dir.path(std::string("n") + n + ".safetensors");
    ASSERT_EQ(run(launched(n, squeeze(out)), out + ".log"), 0) << read_file(out + ".log");
    const auto got = models::load_checkpoint(out, torch::kCPU).class_stats;
    EXPECT_TRUE(torch::equal(got.count, one.count)) << n << " processes";
    for (const auto& [name, mean] : one.mean) {
      EXPECT_TRUE(torch::allclose(got.mean.at(name), mean, 1e-6, 1e-7)) << name << ", " << n;
      EXPECT_TRUE(torch::allclose(got.var.at(name), one.var.at(name), 1e-6, 1e-7)) << name;
    }
    EXPECT_FALSE(fs::exists(out + ".lock"));
  }
}

// squeeze and train data-parallel over 2 processes: both finish, rank 0 alone writes, and the
// models are as good as one process's on the toy set (BatchNorm's per-rank statistics keep
// them from being equal: docs/distributed.md).
TEST(Dist, SqueezeAndTrainRunDataParallelOverTwoProcesses) {
  LPLD_REQUIRE_BINARY();
  test::TempDir dir;
  const std::string teacher = dir.path("t.safetensors");
  ASSERT_EQ(run({"--progress-log",
                 dir.path("p"),
                 "launch",
                 "-n",
                 "2",
                 "--",
                 "squeeze",
                 "--data",
                 test::toy().train,
                 "--val",
                 test::toy().val,
                 "--arch",
                 "convnet-d2-w8",
                 "--epochs",
                 "8",
                 "--batch-size",
                 "16",
                 "--lr",
                 "0.05",
                 "--checkpoint-every",
                 "3",
                 "--out",
                 teacher,
                 "--json",
                 dir.path("t.json")},
                dir.path("t.log")),
            0)
      << read_file(dir.path("t.log"));
  for (const char* rank : {".rank0", ".rank1"})  // --progress-log under launch: one per rank
    EXPECT_NE(read_file(dir.path("p") + rank).find("\"task\":\"squeeze train\""),
              std::string::npos);
  EXPECT_GE(read_json(dir.path("t.json"))["top1"].get<double>(), 90.0);
  EXPECT_FALSE(models::load_checkpoint(teacher, torch::kCPU).class_stats.empty());
  EXPECT_FALSE(fs::exists(teacher + ".state"));
  EXPECT_FALSE(fs::exists(teacher + ".lock"));

  ASSERT_EQ(run(recover_args("class", "1", dir.path("img")), dir.path("r.log")), 0);
  ASSERT_EQ(run({"relabel", "--teacher", test::toy().teacher, "--images", dir.path("img"),
                 "--epochs", "60", "--batch-size", "6", "--out", dir.path("l.lpld")},
                dir.path("l.log")),
            0)
      << read_file(dir.path("l.log"));
  auto train = [&](const std::string& out) {
    return std::vector<std::string>{"train",
                                    "--images",
                                    dir.path("img"),
                                    "--labels",
                                    dir.path("l.lpld"),
                                    "--val",
                                    test::toy().val,
                                    "--arch",
                                    "convnet-d2-w8",
                                    "--epochs",
                                    "60",
                                    "--lr",
                                    "0.01",
                                    "--checkpoint-every",
                                    "25",
                                    "--out",
                                    out};
  };
  ASSERT_EQ(run(train(dir.path("one")), dir.path("one.log")), 0) << read_file(dir.path("one.log"));
  ASSERT_EQ(run(launched("2", train(dir.path("two"))), dir.path("two.log")), 0)
      << read_file(dir.path("two.log"));
  const double one = read_json(dir.path("one/result.json"))["top1"].get<double>();
  const double two = read_json(dir.path("two/result.json"))["top1"].get<double>();
  // 6 images a step, 3 per rank for BatchNorm: only "it learned" is asserted here;
  // bench/dist.sh compares 1 and 2 processes over 5 seeds on Fashion-MNIST
  EXPECT_GE(one, 60.0);  // 3 classes: chance is 33%
  EXPECT_GE(two, 60.0);
  EXPECT_TRUE(fs::exists(dir.path("two/student.safetensors")));
  EXPECT_FALSE(fs::exists(dir.path("two/train-state.safetensors")));
  EXPECT_FALSE(fs::exists(dir.path("two/.lock")));
}

// The data-parallel step's arithmetic, two ranks in two threads of this process: each rank's
// slice loss weighted by its share, the gradients summed over the ranks, is the whole batch's
// gradient (to float summation order). A model without BatchNorm, so nothing else differs.
TEST(DataParallel, GradientsSummedOverRanksAreTheWholeBatchGradient) {
  torch::manual_seed(3);
  torch::nn::Sequential whole(torch::nn::Linear(6, 5), torch::nn::ReLU(), torch::nn::Linear(5, 3));
  const auto x = torch::randn({7, 6}), y = torch::tensor({0, 1, 2, 2, 1, 0, 1});
  torch::nn::functional::cross_entropy(whole->forward(x), y).backward();
  std::vector<torch::nn::Sequential> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.push_back(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(whole->clone()));
  DistEnv env;
  env.world_size = 2;
  env.master_port = free_local_port();
  std::string errors[2];
  auto rank = [&](int r) {
    try {
      DistEnv e = env;
      e.rank = e.local_rank = r;
      Dist dist(e);
      auto& m = ranks[static_cast<size_t>(r)];
      for (auto& p : m->parameters()) p.mutable_grad() = torch::Tensor();
      const auto [lo, hi] = engine::shard_rows(7, &dist);
      auto loss =
          torch::nn::functional::cross_entropy(m->forward(x.slice(0, lo, hi)), y.slice(0, lo, hi)) *
          (static_cast<double>(hi - lo) / 7.0);
      loss.backward();
      engine::all_reduce_gradients(dist, *m, "test");
    } catch (const std::exception& e) {
      errors[r] = e.what();
    }
  };
  std::thread t0(rank, 0), t1(rank, 1);
  t0.join(), t1.join();
  if (errors[0].find("without Gloo") != std::string::npos) GTEST_SKIP() << errors[0];
  ASSERT_EQ(errors[0] + errors[1], "");
  const auto want = whole->parameters();
  for (int r = 0; r < 2; ++r) {
    const auto got = ranks[static_cast<size_t>(r)]->parameters();
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_TRUE(torch::allclose(got[i].grad(), want[i].grad(), 1e-6, 1e-7))
          << "rank " << r << ", parameter " << i;
  }
  EXPECT_EQ(engine::shard_rows(7, nullptr), (std::pair<int64_t, int64_t>{0, 7}));
}

// A 2-process relabel whose rank 1 is killed: rank 0 stops with an error naming its place
// instead of waiting for ever, and a re-run (2 processes) finishes the partial store into the
// one-process store, byte for byte.
TEST(Dist, RelabelWithAKilledRankStopsAndItsRerunFinishesTheStore) {
  LPLD_REQUIRE_BINARY();
  test::TempDir dir;
  ASSERT_EQ(run(recover_args("class", "1", dir.path("img")), dir.path("r.log")), 0);
  auto relabel = [&](const std::string& out) {
    return std::vector<std::string>{
        "relabel",  "--teacher", test::toy().teacher, "--images", dir.path("img"),
        "--epochs", "3000",      "--batch-size",      "4",        "--out",
        out};
  };
  ASSERT_EQ(run(relabel(dir.path("one.lpld")), dir.path("one.log")), 0);
  const std::string out = dir.path("two.lpld");
  const auto [r0, r1] = spawn_two_ranks(relabel(out), dir);
  for (int i = 0; i < 3000; ++i) {  // until some records are written, then kill rank 1
    usleep(2000);
    struct stat st {};
    if (::stat((out + ".partial").c_str(), &st) == 0 && st.st_blocks * 512 > 64 * 1024) break;
  }
  expect_the_survivor_stops(r1, r0, 0, dir);
  EXPECT_FALSE(fs::exists(out));
  ASSERT_EQ(run(launched("2", relabel(out)), dir.path("again.log")), 0)
      << read_file(dir.path("again.log"));
  EXPECT_TRUE(read_file(out) == read_file(dir.path("one.lpld")));
  EXPECT_FALSE(fs::exists(out + ".partial"));
  EXPECT_FALSE(fs::exists(out + ".lock"));
}

TEST(Dist, UnreachableStoreStopsWithItsAddress) {
  LPLD_REQUIRE_BINARY();
  test::TempDir dir;
  const std::string port = std::to_string(free_local_port()), log = dir.path("r1.log");
  EXPECT_EQ(run(recover_args("class", "1", dir.path("out")), log,
                {{"RANK", "1"},
                 {"WORLD_SIZE", "2"},
                 {"MASTER_ADDR", "127.0.0.1"},
                 {"MASTER_PORT", port},
                 {"LPLD_RENDEZVOUS_TIMEOUT", "2"}}),
            1);  // after LPLD_RENDEZVOUS_TIMEOUT, not never (CTest's timeout)
  EXPECT_NE(read_file(log).find("127.0.0.1:" + port), std::string::npos) << read_file(log);
}

// Rank 0 (which serves the store) is killed mid-run: rank 1 stops with an error when it
// reaches the end of its share, instead of waiting for ever.
TEST(Dist, APeerThatDiesStopsTheOtherRank) {
  LPLD_REQUIRE_BINARY();
  test::TempDir dir;
  // Packs of 2 over 3 classes: rank 0 gets classes 0-1, rank 1 class 2.
  auto args = recover_args("class", "2", dir.path("out"));
  args[8] = "3000";  // --iterations: rank 0 is still at work when it is killed
  const auto [r0, r1] = spawn_two_ranks(args, dir);
  for (int i = 0; i < 600 && !fs::exists(dir.path("out/recover.json")); ++i) usleep(10000);
  usleep(500000);
  expect_the_survivor_stops(r0, r1, 1, dir);
}

// The pipeline and the tools run in one process: under torchrun's environment they would
// repeat the work in every process.
TEST(Dist, CommandsThatDoNotRunDistributedRefuseTorchrunsEnvironment) {
  LPLD_REQUIRE_BINARY();
  test::TempDir dir;
  const std::string log = dir.path("s.log");
  EXPECT_EQ(run({"labels", "info", dir.path("x.lpld")}, log, {{"RANK", "0"}, {"WORLD_SIZE", "2"}}),
            2);
  EXPECT_NE(read_file(log).find("runs as one process only"), std::string::npos) << read_file(log);
}

namespace {

// The kill test of a data-parallel stage: `args(out)` makes `out` (a file or a folder) over 2
// processes. An uninterrupted 2-process run is made and moved aside (outputs record their
// paths); then rank 1 of a second run is killed once rank 0 has saved the resume state
// `watch`. Rank 0 must stop with an error naming its place, and a 2-process re-run must
// finish with `output` (relative to `out`, "" for `out` itself) byte-identical to the
// uninterrupted run's, leaving no resume state or lock behind; its `result_json` (relative to
// `out`) must say that it resumed.
void expect_a_killed_rank_resumes(
    const std::function<std::vector<std::string>(const std::string&)>& args,
    const std::string& output, const std::string& watch, const std::string& result_json) {
  test::TempDir dir;
  const std::string out = dir.path("out");
  ASSERT_EQ(run(launched("2", args(out)), dir.path("whole.log")), 0)
      << read_file(dir.path("whole.log"));
  const auto at = [&](const std::string& root) {
    return output.empty() ? root : root + "/" + output;
  };
  const std::string whole = read_file(at(out));
  fs::rename(out, dir.path("whole-out"));
  if (fs::exists(out + ".json")) fs::remove(out + ".json");

  // Killed as soon as rank 0 has saved a resume state (driven by the run's progress, not the
  // clock: the state is written atomically, so it is whole once it exists).
  const auto [r0, r1] = spawn_two_ranks(args(out), dir);
  for (int i = 0; i < 60000 && !fs::exists(out + watch); ++i) {
    if (waitpid(r0, nullptr, WNOHANG) == r0) break;  // rank 0 ended without a state
    usleep(1000);
  }
  if (!fs::exists(out + watch)) {
    kill(r0, SIGKILL), kill(r1, SIGKILL), finish(r0), finish(r1);
    FAIL() << "no resume state was saved: " << read_file(dir.path("r0.log"));
  }
  expect_the_survivor_stops(r1, r0, 0, dir);
  EXPECT_TRUE(fs::exists(out + watch)) << "the resume state is gone";
  EXPECT_FALSE(fs::exists(at(out)) && read_file(at(out)) == whole)
      << "the kill came too late: the stage was already done";

  ASSERT_EQ(run(launched("2", args(out)), dir.path("again.log")), 0)
      << read_file(dir.path("again.log"));
  EXPECT_TRUE(read_file(at(out)) == whole)
      << "the resumed 2-process run wrote other bytes than the uninterrupted one";
  EXPECT_FALSE(fs::exists(out + watch)) << "resume state left behind";
  EXPECT_FALSE(fs::exists(out + ".lock") || fs::exists(out + "/.lock")) << "lock left behind";
  const json j = read_json(out + result_json);
  EXPECT_GT(j.value("resumed_from_epoch", int64_t{0}), 0) << "the re-run started over";
}

}  // namespace

// A 2-process squeeze whose rank 1 is killed after a saved epoch: rank 0 stops with an error,
// and a 2-process re-run writes the uninterrupted run's teacher, byte for byte.
TEST(Dist, SqueezeWithAKilledRankStopsAndItsRerunWritesTheSameTeacher) {
  LPLD_REQUIRE_BINARY();
  expect_a_killed_rank_resumes(
      [](const std::string& out) {
        return std::vector<std::string>{"squeeze",
                                        "--data",
                                        test::toy().train,
                                        "--val",
                                        test::toy().val,
                                        "--arch",
                                        "convnet-d2-w8",
                                        "--epochs",
                                        "60",
                                        "--batch-size",
                                        "8",
                                        "--out",
                                        out,
                                        "--json",
                                        out + ".json"};
      },
      "", ".state", ".json");
}

// The same for train: the re-run resumes from rank 0's resume state (resumed_from_epoch > 0)
// and writes the uninterrupted run's student, byte for byte.
TEST(Dist, TrainWithAKilledRankStopsAndItsRerunWritesTheSameStudent) {
  LPLD_REQUIRE_BINARY();
  test::TempDir data;
  ASSERT_EQ(run(recover_args("class", "1", data.path("img")), data.path("r.log")), 0);
  ASSERT_EQ(run({"relabel", "--teacher", test::toy().teacher, "--images", data.path("img"),
                 "--epochs", "400", "--batch-size", "6", "--out", data.path("l.lpld")},
                data.path("l.log")),
            0)
      << read_file(data.path("l.log"));
  expect_a_killed_rank_resumes(
      [&](const std::string& out) {
        return std::vector<std::string>{"train",
                                        "--images",
                                        data.path("img"),
                                        "--labels",
                                        data.path("l.lpld"),
                                        "--val",
                                        test::toy().val,
                                        "--arch",
                                        "convnet-d2-w8",
                                        "--epochs",
                                        "400",
                                        "--checkpoint-every",
                                        "10",
                                        "--out",
                                        out};
      },
      "student.safetensors", "/train-state.safetensors", "/result.json");
}
