// lpld: dataset distillation with pruned soft labels. A thin CLI over the library:
// each subcommand parses its options and calls one library function.
//
// The error contract: every failure is one line `lpld: error: <file or option>: <problem>` on
// stderr and exit status 2 for usage (a bad flag, option or value) or 1 for everything else
// (files, data, libtorch); no backtrace unless --verbose.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <thread>

#include "common.h"
#include "core/dist.h"
#include "core/runtime.h"
#include "pipeline/stages.h"

namespace {

constexpr int kMaxThreads = 1024;

std::string one_line(std::string text) {
  for (auto& ch : text)
    if (ch == '\n' || ch == '\r') ch = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

int fail(const std::string& message, int status) {
  std::cerr << "lpld: error: " << one_line(message) << std::endl;
  return status;
}

// The first argument that is neither a flag nor a global flag's value, when it names no command.
std::string unknown_command(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") {
      ++i;
      continue;
    }
    if (a.empty() || a[0] == '-') continue;
    for (const auto* sub : app.get_subcommands({}))
      if (sub->get_name() == a) return "";
    return a;
  }
  return "";
}

// Runs `body`, mapping every exception to the error contract.
template <typename Body>
int guarded(bool verbose, Body body) {
  try {
    body();
  } catch (const std::invalid_argument& e) {
    return fail(e.what(), 2);
  } catch (const c10::Error& e) {
    return fail(verbose ? e.what() : e.what_without_backtrace(), 1);
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  }
  return 0;
}

// The pipeline runs its stages in one process; under torchrun's environment it would repeat
// the whole work in every process, so it is refused (its stages run distributed one by one).
void check_distributed(const CLI::App& app) {
  const lpld::DistEnv env = lpld::DistEnv::from_environment();
  if (!env.distributed()) return;
  for (const auto* sub : app.get_subcommands()) {
    const std::string name = sub->get_name();
    const lpld::StageDescriptor* stage = lpld::pipeline::find_stage(name);
    if (name != "launch" && !(stage && stage->distributed)) {
      std::string distributed;
      for (const auto* s : lpld::pipeline::all_stages())
        if (s->distributed) distributed += (distributed.empty() ? "" : ", ") + s->name;
      throw std::invalid_argument(
          name + ": runs as one process only (WORLD_SIZE=" + std::to_string(env.world_size) +
          "); the stages " + distributed + " run distributed");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  lpld::tune_allocator();
  lpld::cli::Context ctx;
  bool verbose = false;
  CLI::App app{"lpld: large-scale dataset distillation with pruned soft labels (LPLD, SRe2L)"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may also follow the subcommand
  app.set_version_flag("--version", [] { return lpld::version_text(); });
  app.add_option("--threads", ctx.threads, "CPU threads (default: OMP_NUM_THREADS, else all cores)")
      ->check(CLI::Range(1, kMaxThreads));
  app.add_flag("--quiet,-q", ctx.quiet, "no progress bars");
  app.add_flag("--verbose", verbose, "libtorch errors with their backtrace");
  bool deterministic = false;
  app.add_flag("--deterministic", deterministic,
               "deterministic algorithms only (bitwise repeats on one GPU; README)");
  app.add_option("--progress-log", ctx.progress_log,
                 "also append progress events to FILE as JSON lines (one per update: a trace "
                 "to plot; survives a kill)");
  int status = 0;
  try {
    lpld::cli::add_stage_commands(app, ctx);
    lpld::cli::add_tool_commands(app, ctx);
    lpld::cli::add_launch_command(app, ctx);
    app.parse(argc, argv);
    check_distributed(app);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    const std::string cmd = unknown_command(app, argc, argv);
    return fail(cmd.empty() ? e.what() : "'" + cmd + "' is not a command (lpld --help lists them)",
                2);
  } catch (...) {  // a --recipe or --config callback, or a bad YAML file
    status = guarded(verbose, [] { throw; });
  }
  if (status != 0) return status;
  spdlog::set_default_logger(spdlog::stderr_color_mt("lpld"));
  spdlog::set_pattern("[%H:%M:%S] %v");
  if (ctx.quiet) spdlog::set_level(spdlog::level::warn);
  return guarded(verbose, [&] {
    lpld::set_threads(ctx.threads);
    lpld::set_deterministic(deterministic);
    if (ctx.run) ctx.run();
  });
}
