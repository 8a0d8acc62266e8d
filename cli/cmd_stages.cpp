// lpld <stage>: one subcommand per stage descriptor (core/stage.h, pipeline/stages.h): parse,
// run the stage, print its summary line; --json writes the result (rank 0 alone).
#include <iostream>

#include "common.h"
#include "pipeline/stages.h"

namespace lpld::cli {
namespace {

// --recipe NAME (configs with presets), --config FILE.yaml, then the config's options, --json.
void add_stage(CLI::App& app, Context& ctx, const StageDescriptor& stage) {
  auto* sub = app.add_subcommand(stage.name, stage.help);
  const std::shared_ptr<StageConfig> config = stage.make_config();
  auto json_path = std::make_shared<std::string>();
  ConfigBinding binding{nullptr,
                        [config](const YAML::Node& node, const std::string& where) {
                          config->apply_yaml(node, where);
                        },
                        config->options(), stage.recipes};
  if (config->has_recipes())
    binding.apply_recipe = [config](const std::string& name) { config->apply_recipe(name); };
  bind_config(sub, std::move(binding));
  sub->add_option("--json", *json_path, "write the result as JSON here");
  sub->callback([&ctx, config, json_path] {
    ctx.run = [&ctx, config, json_path] {
      std::cout << run_stage(*config, ctx.progress(), *json_path).summary << "\n";
    };
  });
}

}  // namespace

void add_stage_commands(CLI::App& app, Context& ctx) {
  for (const StageDescriptor* stage : pipeline::all_stages()) add_stage(app, ctx, *stage);
}

}  // namespace lpld::cli
