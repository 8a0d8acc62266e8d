// One training epoch of the student (METHOD.md Stage 4): replay each step's stored views
// (or render and label them online with the teacher) and take one KD step per label step.
#pragma once
#include <vector>

#include "data/augment.h"
#include "labels/replay.h"
#include "models/classifier.h"
#include "train/inputs.h"

namespace lpld::train {

struct EpochContext {
  models::ClassifierImpl* model = nullptr;  // train mode
  torch::optim::Optimizer* optimizer = nullptr;
  TrainInputs* inputs = nullptr;
  labels::StepPlanner* planner = nullptr;
  const data::NormTensors* norm = nullptr;
  double temperature = 20;
  bool temperature_squared = false;
  torch::Device device{torch::kCPU};
};

// Trains on `steps` (label step ids) in order; returns the epoch's mean loss (one host sync
// per epoch). Adds to `images_seen` and `steps_done`.
double run_epoch(EpochContext& ctx, const std::vector<int64_t>& steps, int64_t& images_seen,
                 int64_t& steps_done);

// The label steps epoch `epoch` trains on: the pool's draw, or with online labels the
// epoch's own steps in order.
std::vector<int64_t> epoch_steps(const TrainInputs& inputs, int64_t epoch);

}  // namespace lpld::train
