// One training epoch of the student (METHOD.md Stage 4): replay each step's stored views
// (or render and label them online with the teacher) and take one KD step per label step.
#pragma once
#include <vector>

#include "core/dist.h"
#include "core/worker.h"
#include "data/augment.h"
#include "engine/precision.h"
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
  double temperature = 20;         // the teacher's, this epoch (DKR)
  double student_temperature = 0;  // 0: the teacher's (CA otherwise)
  bool temperature_squared = false;
  torch::Device device{torch::kCPU};
  engine::Precision precision;  // autocast and layout of the forward passes
  engine::GradScaler scaler{engine::Amp::off, torch::kCPU};  // fp16's loss scaling
  // A distributed run: this rank trains on its slice of every step's rows and the gradients
  // are summed over the ranks (engine/data_parallel.h).
  Dist* dist = nullptr;
  // The input side of each step (plan, image read, stored labels, host staging) runs on this
  // thread, `read_ahead` steps ahead of the compute (core/read_ahead.h); null or 0: inline.
  SerialWorker* reader = nullptr;
  int read_ahead = 2;
  double input_wait_seconds = 0;  // summed time the compute waited for its inputs
  // The last step's student logits and teacher distribution (for the CA search).
  torch::Tensor last_student, last_teacher;
};

// A training step: the label step whose views it renders, and whether its labels come from the
// store's image labels (the fallback, labels/label_pool.h) instead of the step's record.
struct TrainStep {
  int64_t step = 0;
  bool fallback = false;
};

// Trains on `steps` in order; returns the epoch's mean loss over every rank's
// rows (one host sync per epoch). Adds to `images_seen` and `steps_done`.
double run_epoch(EpochContext& ctx, const std::vector<TrainStep>& steps, int64_t& images_seen,
                 int64_t& steps_done);

// The fallback's teacher distribution of a step at temperature T, [n, classes]: each image's
// row of the image labels, mixed with its CutMix partner's by the share of pixels pasted from
// it (what the step's views show of each image; crops and flips are not seen by the table).
torch::Tensor fallback_probs(const labels::LabelCodec::Rows& image_rows,
                             const labels::LabelHeader& header, const labels::StepPlan& plan,
                             double T);

// LPQLD's dynamic calibrated alignment: the student temperature t in {0.01, 0.02, ..., 1}
// that minimizes KL(teacher || softmax(student / t)) on the epoch's last step.
double search_student_temperature(const EpochContext& ctx);

// The steps epoch `epoch` trains on: the pool's draw with its fallback steps, or with online
// labels the epoch's own steps in order.
std::vector<TrainStep> epoch_steps(const TrainInputs& inputs, int64_t epoch);

}  // namespace lpld::train
