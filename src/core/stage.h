// A stage as the CLI, the pipeline and the build see it (docs/architecture.md "Adding a
// stage"): each stage folder defines one StageDescriptor -- its name, help, recipes, whether
// it runs distributed, and its runner and summary line -- in its stage.cpp. The CLI makes one
// subcommand per descriptor and refuses a distributed launch of a stage that is not; which
// stages exist is the list in src/stages.cmake (one library target each).
#pragma once
#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "core/dist.h"
#include "core/io.h"
#include "core/options.h"
#include "core/progress.h"

namespace lpld {

// What a stage run gives back: its result as JSON and the one line the console shows.
struct StageRun {
  json result;
  std::string summary;
};

// One run's configuration with its type hidden: what the CLI binds flags and YAML to.
class StageConfig {
 public:
  virtual ~StageConfig() = default;
  // The options, bound to this object's fields (valid while it lives).
  virtual OptionSet options() = 0;
  virtual bool has_recipes() const = 0;
  virtual void apply_recipe(const std::string& name) = 0;
  // A YAML map of options (its `recipe:` first); `where` names it in errors.
  virtual void apply_yaml(const YAML::Node& node, const std::string& where) = 0;
  virtual json to_json() const = 0;
  // Runs the stage: its result (with "config" and "runtime" added) and summary line.
  virtual StageRun run(Progress& progress) const = 0;
};

struct StageDescriptor {
  std::string name, help;
  std::string recipes;       // --recipe's names for the help; "" when the config has none
  bool distributed = false;  // runs as the ranks of `lpld launch` / torchrun (core/dist.h)
  std::function<std::unique_ptr<StageConfig>()> make_config;
};

// The summary line of rank `env.rank` (ranks above 0 report their share only).
template <typename Config, typename Result>
using StageSummary = std::string (*)(const Config&, const Result&, const DistEnv& env);
template <typename Config, typename Result>
using StageRunner = Result (*)(const Config&, Progress&);

// The result JSON every stage run records beside its own fields.
json stage_result_json(json result, json config);

template <typename Config, typename Result>
class TypedStageConfig final : public StageConfig {
 public:
  TypedStageConfig(StageRunner<Config, Result> run, StageSummary<Config, Result> summary)
      : run_(run), summary_(summary) {}
  OptionSet options() override { return options_of(config_); }
  bool has_recipes() const override { return has_recipe<Config>::value; }
  void apply_recipe(const std::string& name) override {
    if constexpr (has_recipe<Config>::value) config_.apply_recipe(name);
  }
  void apply_yaml(const YAML::Node& node, const std::string& where) override {
    apply_yaml_config(config_, node, where);
  }
  json to_json() const override { return config_json(config_); }
  StageRun run(Progress& progress) const override {
    const Result r = run_(config_, progress);
    return {stage_result_json(r.to_json(), to_json()),
            summary_(config_, r, DistEnv::from_environment())};
  }

 private:
  Config config_;
  StageRunner<Config, Result> run_;
  StageSummary<Config, Result> summary_;
};

// A descriptor over a stage's typed config, runner and summary.
template <typename Config, typename Result>
StageDescriptor make_stage(std::string name, std::string help, std::string recipes,
                           bool distributed, StageRunner<Config, Result> run,
                           StageSummary<Config, Result> summary) {
  StageDescriptor d{std::move(name), std::move(help), std::move(recipes), distributed, {}};
  d.make_config = [run, summary] {
    return std::make_unique<TypedStageConfig<Config, Result>>(run, summary);
  };
  return d;
}

// Runs `config` as its stage does on the command line: the summary, and the result written
// to `json_path` (when not empty) by rank 0 alone.
StageRun run_stage(const StageConfig& config, Progress& progress, const std::string& json_path);

}  // namespace lpld
