// The resume state of a squeeze run (`<out>.state`, safetensors): after every epoch the model,
// SGD momentum and counters; during the class-statistics pass the trained model and the sums
// so far. A killed run, re-run with the same config, continues from it and writes the same
// checkpoint bytes as an uninterrupted run; another config discards it (with a message).
#pragma once
#include <map>
#include <optional>
#include <string>

#include "core/io.h"
#include "engine/evaluate.h"
#include "models/classifier.h"

namespace lpld::squeeze {

struct SqueezeState {
  std::string phase = "train";  // train | stats
  int64_t epochs_done = 0, step = 0, stats_batches = 0, train_images = 0;
  double train_seconds = 0, step_seconds = 0;
  // The teacher's evaluation, done before the stats pass: a resumed pass does not redo it
  // (top1, top5 and seconds are saved).
  std::optional<engine::EvalResult> eval;
  std::map<std::string, torch::Tensor> optimizer, stats;  // named tensors of each phase
};

void save_squeeze_state(const std::string& path, const json& identity,
                        models::ClassifierImpl& model, const SqueezeState& state);
// The state at `path` restored into `model` (the optimizer and statistics tensors are returned
// in the state); nothing when there is none or it belongs to another config.
std::optional<SqueezeState> load_squeeze_state(const std::string& path, const json& identity,
                                               models::ClassifierImpl& model);

}  // namespace lpld::squeeze
