// lpld: dataset distillation with pruned soft labels. A thin CLI over the library:
// each subcommand parses its options and calls one stage function.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>
#include <vector>

#include "common.h"
#include "core/runtime.h"

int main(int argc, char** argv) {
  lpld::tune_allocator();
  lpld::cli::Context ctx;
  // `--cutmix ALPHA` is `--cutmix-alpha ALPHA` (with CutMix on); a bare `--cutmix` or
  // `--no-cutmix` is the on/off flag.
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--cutmix" && i + 1 < argc && std::strtod(argv[i + 1], nullptr) > 0)
      arg = "--cutmix-alpha";
    ctx.argv.push_back(arg);
  }
  std::vector<const char*> args;
  for (const auto& a : ctx.argv) args.push_back(a.c_str());
  CLI::App app{"lpld: large-scale dataset distillation with pruned soft labels (LPLD, SRe2L)"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may also follow the subcommand
  app.add_option("--threads", ctx.threads, "CPU threads (default: all cores)");
  app.add_flag("--quiet,-q", ctx.quiet, "no progress bars");
  try {
    lpld::cli::add_eval_command(app, ctx);
    lpld::cli::add_stage_commands(app, ctx);
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "lpld: error: " << e.what() << std::endl;
    return 2;
  }
  spdlog::set_pattern("[%H:%M:%S] %v");
  spdlog::set_default_logger(spdlog::stderr_color_mt("lpld"));
  spdlog::set_pattern("[%H:%M:%S] %v");
  if (ctx.quiet) spdlog::set_level(spdlog::level::warn);
  try {
    lpld::set_threads(ctx.threads);
    if (ctx.run) ctx.run();
  } catch (const std::invalid_argument& e) {
    std::cerr << "lpld: invalid argument: " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "lpld: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
