// Stage 4 (METHOD.md): train a student from scratch on the synthetic images, replaying the
// stored views and soft labels of a label pool (or labelling each view online with the
// teacher), with KL(softmax(teacher/T) || softmax(student/T)). Evaluates on the real
// validation set, checkpoints every few epochs and resumes after a kill.
//
// Files in `out`: student.safetensors (final model), result.json, eval.jsonl (one line
// per evaluation), train-state.safetensors (resume state, removed when done).
#pragma once
#include <string>

#include "core/options.h"
#include "core/progress.h"
#include "engine/precision.h"
#include "labels/label_pool.h"
#include "labels/views.h"

namespace lpld::train {

enum class Optimizer { adamw, sgd };
const std::vector<Choice<Optimizer>>& choices(Optimizer);
// The teacher's temperature over epochs: constant, or LPQLD's DKR step or cosine decay
// (teacher_temperature below).
enum class TemperatureSchedule { constant, step, cosine };
const std::vector<Choice<TemperatureSchedule>>& choices(TemperatureSchedule);

struct TrainConfig {
  // auto (default): from the teacher's resolution when the run starts (core/options.h), options
  // set away from their defaults kept; or imagenet1k, tiny or small by name.
  std::string recipe = "auto";
  std::string images;   // synthetic image folder
  std::string labels;   // label store, or "online"
  std::string teacher;  // online labels only
  std::string val = "fashion-mnist:test";
  std::string arch = "convnet-d3-w64";
  std::string out;
  int64_t epochs = 300;
  double prune_ratio = 0;
  labels::Granularity granularity = labels::Granularity::batch_to_epoch;
  std::string metric = "random";
  // The image-label fallback (issue #30): this share of training steps renders a pruned step's
  // views and labels them from the store's image labels (relabel --image-labels), CutMix's
  // partner mixed in by its pasted area, instead of replaying the pool (labels/label_pool.h).
  double fallback_share = 0;
  Optimizer optimizer = Optimizer::adamw;
  double lr = 1e-3;
  double weight_decay = 0.01;
  double momentum = 0.9;  // sgd
  int64_t warmup_epochs = 0;
  double temperature = 20;
  bool temperature_squared = false;  // Tiny-ImageNet recipe: loss x T^2
  // LPQLD's dynamic knowledge reuse (DKR): the teacher temperature over epochs e = 1..E,
  //   constant  T
  //   step      max(floor, T * gamma^(e // step))         (LPQLD: step 30, gamma 0.7, floor 2)
  //   cosine    T_min + (T - T_min) (1 + cos(pi e / E)) / 2
  TemperatureSchedule temperature_schedule = TemperatureSchedule::constant;
  int64_t temperature_step = 30;
  double temperature_gamma = 0.7;
  double temperature_floor = 2;
  double temperature_min = 1;
  // LPQLD's calibrated alignment (CA): the student's softmax temperature, distinct from the
  // teacher's (0: the teacher's); with student_temperature_search it is re-chosen after every
  // epoch as the t in {0.01, 0.02, ..., 1} minimizing the last batch's loss (LPQLD's dynamic
  // variant, which starts at student_temperature, or 1).
  double student_temperature = 0;
  bool student_temperature_search = false;
  int64_t eval_every = 0;         // evaluate every K epochs (0: only at the end)
  int64_t checkpoint_every = 25;  // epochs between resume checkpoints
  // Views for online labels (a store carries its own: set here, they must match it).
  labels::ViewOptions views;  // labels/views.h
  uint64_t seed = 0;
  std::string device = "cpu";
  engine::Amp amp = engine::Amp::off;  // engine/precision.h
  bool channels_last = false;          // NHWC model and inputs
  // Label steps whose inputs (images, stored labels) are read ahead of the compute on a helper
  // thread (0: read inline; -1: 2 on a GPU, 0 on the CPU, where the input side is under 1% of a
  // step and handing it over cost 3%: bench/results/read-ahead.md). Changes no number, so it
  // is not part of a run's identity.
  int64_t read_ahead = -1;

  void declare(OptionSet& o);
  // "imagenet1k", "tiny", or "small" (our 28-32 px default: the ImageNet-1K recipe); "auto"
  // is resolved when the labels' resolution is known (train/inputs.h).
  void apply_recipe(const std::string& name);
  void validate() const;
};

struct TrainResult {
  std::string recipe;  // the recipe the run used ("auto" resolved)
  double top1 = 0, top5 = 0;
  double seconds = 0, train_seconds = 0, images_per_second = 0;
  double setup_seconds = 0;  // before the first unit of work (core/clock.h)
  // Of train_seconds, the time the steps waited for their inputs (this process; this run only,
  // not the epochs before a resume): with read-ahead it approaches 0 when input < compute.
  double input_wait_seconds = 0;
  int64_t steps = 0, pool_steps = 0, resumed_from_epoch = 0;
  bool reused = false;  // an identical finished run was found in `out`
  json evals = json::array();
  // Rule-based metrics only (null otherwise): rule, side, the selected step ids and the mean
  // score over the pool and over every step, so a run's pool can be checked and explained.
  json rule_pool = nullptr;
  json to_json() const;
};

TrainResult train_student(const TrainConfig& config, Progress& progress);

// The teacher temperature of 1-based epoch `epoch` (of `epochs`) under the config's schedule.
double teacher_temperature(const TrainConfig& config, int64_t epoch, int64_t epochs);

}  // namespace lpld::train
