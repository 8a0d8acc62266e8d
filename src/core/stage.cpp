#include "core/stage.h"

#include "core/runtime.h"

namespace lpld {

json stage_result_json(json result, json config) {
  result["config"] = std::move(config);
  result["runtime"] = runtime_info();
  return result;
}

StageRun run_stage(const StageConfig& config, Progress& progress, const std::string& json_path) {
  StageRun run = config.run(progress);
  if (!json_path.empty() && DistEnv::from_environment().rank == 0)  // rank 0 alone writes
    write_json(json_path, run.result);
  return run;
}

}  // namespace lpld
