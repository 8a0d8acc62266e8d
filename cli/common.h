// Shared CLI plumbing: each subcommand binds its stage Config's declared options
// (core/options.h) as flags, optionally preloaded from `--config FILE.yaml`, and runs the
// stage function after parsing.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/options.h"
#include "core/progress.h"

namespace lpld::cli {

struct Context {
  std::vector<std::string> argv;  // for --config pre-scan
  int threads = 0;
  bool quiet = false;
  std::function<void()> run;  // set by the chosen subcommand
  Progress& progress();
  std::unique_ptr<Progress> progress_;
};

// Binds every option of `set` to `sub` as --name-with-dashes (bools: --name / --no-name).
void bind_options(CLI::App* sub, const OptionSet& set);

// If argv has `--config FILE`, applies that YAML file's top-level map to `set` first,
// so flags given on the command line override it.
void preload_yaml(const Context& ctx, const OptionSet& set);

// Writes `result` to `path` atomically when `path` is not empty.
void write_result(const std::string& path, const json& result);

void add_eval_command(CLI::App& app, Context& ctx);
void add_stage_commands(CLI::App& app, Context& ctx);

}  // namespace lpld::cli
