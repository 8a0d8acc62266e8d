// Kill tests (issue: nothing lost): every stage is run to completion once, then again with
// SIGKILL at three points (after a few saved resume states, counts drawn from a fixed seed),
// resumed each time; the final outputs must equal the uninterrupted run's byte for byte,
// nothing may be left behind (temp files, partial stores, resume states, locks), and each kill
// may lose at most one checkpoint interval of work, counted in the runs' progress logs
// (--progress-log), not timed. A disk-full
// test runs on a small tmpfs where mounting one is allowed (root), and is skipped otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>

#include "core/io.h"
#include "fixtures.h"
#include "process.h"

using namespace lpld;
namespace fs = std::filesystem;

namespace {

using test::finish;
using test::spawn;

// Runs `make(out)` to completion; returns its wall seconds.
double run_whole(const std::vector<std::string>& args, const std::string& log) {
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(finish(spawn(args, log)), 0) << read_file(log);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// What the resume files under `watch` look like now: their names, inodes, sizes and times.
// Every stage writes its resume state atomically (a new inode each time), so this changes
// exactly when a new state has been saved.
std::string snapshot(const std::string& watch) {
  std::string sig;
  std::error_code ec;
  const auto add = [&](const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0)
      sig += p.string() + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
             std::to_string(st.st_mtim.tv_nsec) + ";";
  };
  if (fs::is_directory(watch, ec)) {
    for (const auto& e : fs::directory_iterator(watch, ec)) add(e.path());
  } else {
    add(watch);
  }
  return sig;
}

// Kills a run once it has saved `saves` new resume states under `watch` (plus a random part
// of the time between two saves), then lets the next run go on. Driven by the run's own
// progress, not the clock, so a loaded or an idle machine kills it at the same place.
void run_killed(const std::vector<std::string>& args, const std::string& watch, int saves,
                double extra, const std::string& log) {
  const pid_t pid = spawn(args, log);
  std::string last = snapshot(watch);
  int seen = 0;
  auto t_last = std::chrono::steady_clock::now();
  double gap = 0;
  while (seen < saves) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;  // finished (the caller's check fails)
    usleep(1000);
    const std::string now = snapshot(watch);
    if (now.empty() || now == last) continue;
    last = now;
    ++seen;
    const auto t = std::chrono::steady_clock::now();
    gap = std::chrono::duration<double>(t - t_last).count();
    t_last = t;
  }
  usleep(static_cast<useconds_t>(std::min(gap, 0.5) * extra * 1e6));
  kill(pid, SIGKILL);
  finish(pid);
}

// `args` with --progress-log `log` after the program's path.
std::vector<std::string> logged(std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin() + 1, {"--progress-log", log});
  return args;
}

// One task of a run, from the run's progress log: its total, the units its last update had
// done, and those of them a killed run had done (skip events).
struct TaskLog {
  int64_t total = -1, done = 0, skipped = 0;
};

// The task whose name starts with `task` in the progress log `path` (the last one that
// started), checking that its updates never go back and never pass its total.
TaskLog task_log(const std::string& path, const std::string& task) {
  TaskLog t;
  bool in_task = false;
  for (const json& e : test::json_lines(path)) {
    const std::string event = e.at("event");
    if (event == "start") {
      in_task = e.at("task").get<std::string>().rfind(task, 0) == 0;
      if (in_task) t = TaskLog{e.at("total").get<int64_t>(), 0, 0};
    } else if (in_task && event == "skip") {
      t.skipped += e.at("units").get<int64_t>();
    } else if (in_task && event == "update") {
      const int64_t done = e.at("done");
      EXPECT_GE(done, t.done) << path << ": " << e.dump();
      EXPECT_LE(done, t.total) << path << ": " << e.dump();
      t.done = done;
    }
  }
  EXPECT_GE(t.total, 0) << path << ": no task '" << task << "'";
  return t;
}

// How much work a kill may lose: `share` of the task's whole total plus `units`.
struct Interval {
  std::string task;
  double share = 0;
  int64_t units = 0;
};

// Each killed run's lost work: what it had done when killed less what the next run found done,
// both counted from the whole run's start. A run that starts with `before` units done (the
// whole total less its own total, plus what it skips) has done before - skipped + done when
// it is killed.
void expect_lost_within(const std::vector<std::string>& logs, const std::string& whole_log,
                        const Interval& interval) {
  const TaskLog whole = task_log(whole_log, interval.task);
  EXPECT_EQ(whole.done, whole.total) << whole_log << ": the finished task's updates fall short";
  const auto before = [&](const TaskLog& t) { return whole.total - t.total + t.skipped; };
  const double bound = interval.share * static_cast<double>(whole.total) + interval.units;
  for (size_t r = 0; r + 1 < logs.size(); ++r) {
    const TaskLog killed = task_log(logs[r], interval.task),
                  next = task_log(logs[r + 1], interval.task);
    const int64_t lost = before(killed) - killed.skipped + killed.done - before(next);
    EXPECT_GE(lost, 0) << logs[r] << ": the next run found more done than the log shows";
    EXPECT_LE(static_cast<double>(lost), bound)
        << logs[r] << ": the kill lost " << lost << " " << interval.task << " units";
  }
  const TaskLog last = task_log(logs.back(), interval.task);
  EXPECT_EQ(last.done, last.total) << logs.back() << ": the resumed task's updates fall short";
}

// Files under `dir` (relative path -> bytes) whose names pass `keep`.
std::map<std::string, std::string> files(const std::string& dir,
                                         const std::function<bool(const fs::path&)>& keep) {
  std::map<std::string, std::string> out;
  if (fs::is_regular_file(dir)) {
    out["the output file"] = read_file(dir);
    return out;
  }
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && keep(e.path()))
      out[fs::relative(e.path(), dir).string()] = read_file(e.path().string());
  return out;
}

// Nothing a run leaves only while it works: temp files, partial stores, resume states, locks.
void expect_no_leftovers(const std::string& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    for (const char* bad : {".tmp", ".partial", ".lock", ".state", "train-state", ".units"})
      EXPECT_EQ(name.find(bad), std::string::npos) << "left behind: " << e.path();
  }
}

// The kill test of one stage: `args(out)` makes `out`; `keep` picks the files to compare;
// `marker` (relative to `out`, "" for `out` itself) exists only once the stage is done.
// `watch` (relative to the directory holding `out`) is where the stage saves resume states;
// `stride` changes of it count as one saved state (a label store grows record by record).
// `interval` is the work one kill may lose.
void kill_test(const std::function<std::vector<std::string>(const std::string&)>& args,
               const std::function<bool(const fs::path&)>& keep, uint32_t seed,
               const std::string& marker, const std::string& watch, const Interval& interval,
               int stride = 1) {
  test::TempDir dir;
  // Both runs write the same path (outputs record their config, paths included); the
  // uninterrupted run's outputs are moved aside before the killed run starts.
  const std::string killed = dir.path("run"), out_killed = killed + "/out";
  const std::string out_whole = dir.path("whole-out");
  fs::create_directories(killed);
  run_whole(logged(args(out_killed), dir.path("whole.progress")), dir.path("whole.log"));
  fs::rename(out_killed, out_whole);
  // Three kills (the three random points), each after a few saved states and a
  // random part of the next interval.
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> saves(1, 3);
  std::uniform_real_distribution<double> extra(0.0, 0.9);
  std::vector<std::string> progress;
  for (const char* log : {"k1", "k2", "k3"}) {
    const int n = saves(gen) * stride;
    progress.push_back(dir.path(log + std::string(".progress")));
    run_killed(logged(args(out_killed), progress.back()), killed + "/" + watch, n, extra(gen),
               dir.path(log + std::string(".log")));
  }
  EXPECT_FALSE(fs::exists(marker.empty() ? out_killed : out_killed + "/" + marker))
      << "the kills came too late: the stage was already done";
  progress.push_back(dir.path("resume.progress"));
  EXPECT_EQ(finish(spawn(logged(args(out_killed), progress.back()), dir.path("resume.log"))), 0)
      << read_file(dir.path("resume.log"));
  expect_lost_within(progress, dir.path("whole.progress"), interval);
  const auto a = files(out_whole, keep), b = files(out_killed, keep);
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a.size(), b.size());
  for (const auto& [name, bytes] : a) {
    ASSERT_TRUE(b.count(name)) << name << " missing after the resumed run";
    EXPECT_TRUE(b.at(name) == bytes) << name << " differs from the uninterrupted run's";
  }
  expect_no_leftovers(killed);
}

std::string bin() { return test::lpld_binary(); }
std::vector<std::string> cli(std::vector<std::string> args) {
  args.insert(args.begin(), {bin(), "--quiet", "--threads", "1"});
  return args;
}
bool png(const fs::path& p) { return p.extension() == ".png"; }

}  // namespace

TEST(Resume, SqueezeKilledThriceWritesTheSameTeacher) {
  LPLD_REQUIRE_BINARY();
  kill_test(
      [](const std::string& out) {
        return cli({"squeeze", "--data", test::toy().train, "--val", test::toy().val, "--arch",
                    "convnet-d2-w8", "--epochs", "120", "--batch-size", "8", "--out", out});
      },
      [](const fs::path&) { return true; }, 1, "", "out.state",
      {"squeeze train", 1.0 / 120, 0});  // a resume state every epoch
}

TEST(Resume, RecoverKilledThriceInPackedGroupsWritesTheSameImages) {
  LPLD_REQUIRE_BINARY();
  kill_test(
      [](const std::string& out) {
        return cli({"recover", "--teacher", test::toy().teacher, "--ipc", "4", "--batch-size", "2",
                    "--iterations", "600", "--checkpoint-every", "25", "--pack", "2", "--out",
                    out});
      },
      png, 2, "000_hstripes", "out/.units",
      {"recover class", 0, 25 * 2});  // a group of 2 units saves every 25 iterations
}

TEST(Resume, TrainKilledThriceWritesTheSameStudent) {
  LPLD_REQUIRE_BINARY();
  test::TempDir dir;
  const std::string images = dir.path("img"), labels = dir.path("l.lpld");
  ASSERT_EQ(finish(spawn(cli({"recover", "--teacher", test::toy().teacher, "--ipc", "3",
                              "--iterations", "20", "--out", images}),
                         dir.path("r.log"))),
            0);
  ASSERT_EQ(finish(spawn(cli({"relabel", "--teacher", test::toy().teacher, "--images", images,
                              "--epochs", "400", "--batch-size", "3", "--out", labels}),
                         dir.path("l.log"))),
            0);
  kill_test(
      [&](const std::string& out) {
        return cli({"train", "--images", images, "--labels", labels, "--val", test::toy().val,
                    "--arch", "convnet-d2-w8", "--epochs", "400", "--checkpoint-every", "10",
                    "--out", out});
      },
      [](const fs::path& p) { return p.filename() == "student.safetensors"; }, 3, "result.json",
      "out/train-state.safetensors", {"train", 10.0 / 400, 0});  // every 10 epochs
}

// relabel resumes from the last verified record of its partial store; the kills land after
// a few dozen record writes each.
TEST(Resume, RelabelKilledThriceWritesTheSameStore) {
  LPLD_REQUIRE_BINARY();
  test::TempDir dir;
  const std::string images = dir.path("img");
  ASSERT_EQ(finish(spawn(cli({"recover", "--teacher", test::toy().teacher, "--ipc", "3",
                              "--iterations", "20", "--out", images}),
                         dir.path("r.log"))),
            0);
  kill_test(
      [&](const std::string& out) {
        return cli({"relabel", "--teacher", test::toy().teacher, "--images", images, "--epochs",
                    "6000", "--batch-size", "3", "--out", out});
      },
      [](const fs::path&) { return true; }, 4, "", "out.partial", {"relabel", 0, 4 * 13},
      20);  // the 4 groups of 13 steps queued behind the writer
}

// A full disk during recover fails with one line naming the file; once there is room, the
// re-run finishes from where it was and leaves nothing behind.
TEST(Resume, FullDiskFailsCleanlyAndTheRerunFinishes) {
  LPLD_REQUIRE_BINARY();
  test::TempDir dir;
  const std::string mnt = dir.path("small");
  fs::create_directories(mnt);
  if (geteuid() != 0 || mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=24k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  struct Unmount {
    std::string p;
    ~Unmount() { umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  auto args = cli({"recover", "--teacher", test::toy().teacher, "--ipc", "20", "--iterations", "5",
                   "--out", mnt + "/img"});
  const std::string log = dir.path("full.log");
  EXPECT_EQ(finish(spawn(args, log)), 1) << read_file(log);
  const std::string err = read_file(log);
  EXPECT_NE(err.find("lpld: error: " + mnt), std::string::npos) << err;
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  ASSERT_EQ(mount("tmpfs", mnt.c_str(), "tmpfs", MS_REMOUNT, "size=4m"), 0);
  EXPECT_EQ(finish(spawn(args, dir.path("again.log"))), 0) << read_file(dir.path("again.log"));
  EXPECT_EQ(files(mnt + "/img", png).size(), 60u);
  expect_no_leftovers(mnt);
}
