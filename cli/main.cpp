// lpld: dataset distillation with pruned soft labels. A thin CLI over the library:
// each subcommand parses its options and calls one library function.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "common.h"
#include "core/runtime.h"

int main(int argc, char** argv) {
  lpld::tune_allocator();
  lpld::cli::Context ctx;
  CLI::App app{"lpld: large-scale dataset distillation with pruned soft labels (LPLD, SRe2L)"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may also follow the subcommand
  app.add_option("--threads", ctx.threads, "CPU threads (default: all cores)");
  app.add_flag("--quiet,-q", ctx.quiet, "no progress bars");
  try {
    lpld::cli::add_stage_commands(app, ctx);
    lpld::cli::add_tool_commands(app, ctx);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "lpld: error: " << e.what() << std::endl;
    return 2;
  }
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
