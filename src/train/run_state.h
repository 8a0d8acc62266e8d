// A student run's files in its folder: the resume state written every few epochs
// (train-state.safetensors: model, optimizer, progress; removed when the run is done) and the
// finished run's result.json, which a re-run with the same identity reuses.
#pragma once
#include <optional>
#include <string>

#include "core/io.h"
#include "models/classifier.h"
#include "train/student.h"

namespace lpld::train {

struct ResumeState {
  int64_t epochs_done = 0, steps = 0, images_seen = 0;
  double train_seconds = 0;        // training time before this point
  double student_temperature = 0;  // the CA search's current choice
  json evals = json::array();
};

void save_resume_state(const std::string& path, const json& identity, models::ClassifierImpl& model,
                       torch::optim::Optimizer& optimizer, const ResumeState& state);
// Restores model and optimizer; throws runtime_error naming `path` when it belongs to
// another run or is damaged.
ResumeState load_resume_state(const std::string& path, const json& identity,
                              models::ClassifierImpl& model, torch::optim::Optimizer& optimizer);

// The finished run recorded in `done` (its result.json: core/stage_output.h), as reused.
TrainResult finished_run(const json& done);

}  // namespace lpld::train
