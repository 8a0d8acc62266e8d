// The whole method as one command: squeeze -> recover -> relabel -> train, for every
// mode, IPC, pruning ratio and student seed a YAML config lists (README "Pipeline config").
// Each stage's outputs live under the run folder and are reused when they exist for the
// same config, so a re-run after a kill, or with one more ratio, does only what is missing.
// summary.json's "seconds" are the compute costs of the results it lists (reused ones
// included); "this_invocation" is the wall time of this call.
#pragma once
#include <string>
#include <vector>

#include "core/io.h"
#include "core/progress.h"
#include "recover/recover.h"
#include "relabel/relabel.h"
#include "squeeze/squeeze.h"
#include "train/student.h"

namespace lpld::pipeline {

struct PipelineConfig {
  std::vector<std::string> modes = {"class"};
  std::vector<int64_t> ipcs = {10};
  std::vector<double> prune_ratios = {0.0};
  std::vector<int64_t> seeds = {0};  // student seeds
  bool online = false;               // also train with online labels (the unpruned reference)
  bool order_at_1x = false;  // at prune ratio 0 replay every stored epoch in order (official)
  uint64_t seed = 0;         // teacher, images and label views
  std::string device = "cpu";
  squeeze::SqueezeConfig squeeze;
  recover::RecoverConfig recover;
  relabel::RelabelConfig relabel;
  train::TrainConfig train;
};

// Reads the YAML file: top-level keys modes, ipcs, prune_ratios, seeds, online, seed,
// device, and one map per stage (squeeze, recover, relabel, train; each may start with
// `recipe:`). An unknown key or a bad value is an invalid_argument naming it.
PipelineConfig load_pipeline_config(const std::string& path);

struct RunSummary {
  std::string mode;
  int64_t ipc = 0;
  double prune_ratio = 0;  // -1 for online labels
  int64_t seed = 0;
  uint64_t label_bytes = 0;
  int64_t image_bytes = 0;
  double student_top1 = 0, student_top5 = 0, seconds = 0;
};

struct PipelineResult {
  json summary;  // what summary.json holds
  std::string markdown;
};

PipelineResult run_pipeline(const PipelineConfig& config, const std::string& out,
                            Progress& progress);

// The summary table as Markdown (mean +- std over seeds).
std::string summary_markdown(const json& summary);

}  // namespace lpld::pipeline
