// Shared CLI plumbing: each subcommand binds its Config's declared options (core/options.h)
// as flags and runs one library function after parsing.
//
// Order of application is the order of declaration (CLI11 runs option callbacks in the order
// the options were added): --recipe (the preset), then --config (a YAML file), then every
// other flag, so the file overrides the preset and flags override both, wherever they stand
// on the command line.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "core/options.h"
#include "core/progress.h"

namespace lpld::cli {

struct Context {
  int threads = 0;
  bool quiet = false;
  std::string progress_log;   // --progress-log: also append progress events here (JSON lines)
  std::function<void()> run;  // set by the chosen subcommand
  Progress& progress();
  std::unique_ptr<Progress> progress_;
};

// Binds every option of `set` to `sub` as --name-with-dashes (bools: --name / --no-name; a
// bool with a companion also takes an optional value for it). Options named in `skip` are
// left out.
void bind_options(CLI::App* sub, const OptionSet& set, const std::string& skip = "");

// What bind_config binds: a config's recipe (null: it has none) and YAML setters, and its
// options (bound to its fields).
struct ConfigBinding {
  std::function<void(const std::string&)> apply_recipe;
  std::function<void(const YAML::Node&, const std::string&)> apply_yaml;
  OptionSet options;
  std::string recipes;  // --recipe's names for the help
};
// --recipe NAME (configs with presets), --config FILE.yaml, then the config's options.
void bind_config(CLI::App* sub, ConfigBinding binding);

template <typename Config>
void bind_config(CLI::App* sub, const std::shared_ptr<Config>& config, const std::string& recipes) {
  ConfigBinding b{nullptr,
                  [config](const YAML::Node& node, const std::string& where) {
                    apply_yaml_config(*config, node, where);
                  },
                  options_of(*config), recipes};
  if constexpr (has_recipe<Config>::value)
    b.apply_recipe = [config](const std::string& name) { config->apply_recipe(name); };
  bind_config(sub, std::move(b));
}

// Writes `result` to `path` atomically when `path` is not empty.
void write_result(const std::string& path, const json& result);

void add_stage_commands(CLI::App& app, Context& ctx);
void add_tool_commands(CLI::App& app, Context& ctx);  // eval, labels, pipeline
void add_launch_command(CLI::App& app, Context& ctx);

}  // namespace lpld::cli
