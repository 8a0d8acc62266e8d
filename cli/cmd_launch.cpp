// lpld launch -n N -- <stage> ...: N processes of this binary on this machine, each with
// torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), so the stage runs distributed over c10d (core/dist.h). Several machines:
// start the stage on each with those variables set (or torchrun), as docs/distributed.md says.
// Written by hand: no Debian library spawns and supervises a group of processes.
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "common.h"
#include "core/dist.h"
#include "core/runtime.h"

namespace lpld::cli {
namespace {

pid_t start_rank(int rank, int n, int port, int threads, const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", std::to_string(n).c_str(), 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  std::vector<std::string> argv = {"/proc/self/exe", "--threads", std::to_string(threads)};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c;
  for (auto& a : argv) c.push_back(a.data());
  c.push_back(nullptr);
  execv("/proc/self/exe", c.data());
  _exit(127);
}

// Waits for every rank; the first that fails stops the others (they may be hours from
// their next collective). Returns the first failure's status, or 0.
int supervise(std::vector<pid_t> pids) {
  int first_failure = 0;
  for (size_t alive = pids.size(); alive > 0; --alive) {
    int status = 0;
    const pid_t pid = wait(&status);
    if (pid < 0) break;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const auto it = std::find(pids.begin(), pids.end(), pid);
    const auto rank = it - pids.begin();
    if (it != pids.end()) *it = 0;
    if (code == 0 || first_failure != 0) continue;
    first_failure = code;
    std::cerr << fmt::format("lpld: launch: rank {} exited with status {}; stopping the others\n",
                             rank, code);
    for (pid_t p : pids)
      if (p > 0) kill(p, SIGTERM);
  }
  return first_failure;
}

}  // namespace

void add_launch_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand(
      "launch", "run a stage as N processes on this machine (torchrun's environment, c10d)");
  auto n = std::make_shared<int>(2);
  sub->add_option("-n,--nproc", *n, "processes")->check(CLI::Range(1, 1024));
  auto command = std::make_shared<std::vector<std::string>>();
  sub->add_option("command", *command, "the stage and its options, after --")->expected(-1);
  sub->footer("Example: lpld launch -n 2 -- recover --teacher t.safetensors --out images/");
  sub->callback([&ctx, n, command] {
    const std::vector<std::string> args = *command;
    if (args.empty())
      throw std::invalid_argument("launch: name the stage to run after --, e.g. -- recover ...");
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // each rank: --threads, else OMP_NUM_THREADS (as torchrun leaves it), else its share
    const int from_env = threads_from_environment();
    const int threads = ctx.threads > 0 ? ctx.threads
                        : from_env > 0  ? from_env
                                        : std::max(1, cores / *n);
    const int port = free_local_port();
    std::vector<std::string> stage = args;
    if (ctx.quiet) stage.insert(stage.begin(), "--quiet");
    const std::string log = ctx.progress_log;
    ctx.run = [=] {
      std::vector<pid_t> pids;
      for (int r = 0; r < *n; ++r) {
        std::vector<std::string> rank_stage = stage;  // one progress log per rank: FILE.rankN
        if (!log.empty())
          rank_stage.insert(rank_stage.begin(),
                            {"--progress-log", log + ".rank" + std::to_string(r)});
        pids.push_back(start_rank(r, *n, port, threads, rank_stage));
      }
      const int status = supervise(pids);
      if (status != 0) std::exit(status);
    };
  });
}

}  // namespace lpld::cli
