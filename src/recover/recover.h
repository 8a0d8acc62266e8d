// Stage 2 (METHOD.md): synthesize IPC images per class from a frozen teacher.
//
//   class mode (LPLD): a batch holds images of one class; BN matching against that
//                      class's statistics (squeeze/class_stats.h).
//   mixed mode (SRe2L): a batch holds one image of every class; BN matching against the
//                      teacher's global running statistics.
//
// Parts: units.h (plan the work, the whole run's groups), optimize.h (optimize one group of
// units; the loss), rounds.h (groups round by round, stalled units restarted), stall.h (detect
// a unit that did not converge; it is restarted from fresh streams), run_state.h (units done,
// classes to publish), class_folders.h (stage and publish complete classes), folder.h
// (recover.json, locks, unit files, manifest.json). recover() (recover.cpp) ties them
// together: bind the folder to one config, plan the pending units, optimize them in packs,
// restart stalled ones, publish classes as they complete, write the manifest.
//
// Output: an ImageFolder of PNGs (DIR/NNN_<name>/NNNNN.png), per class a class.json
// with losses, loss traces, restarts and seconds, recover.json fixing the config, and
// manifest.json (every complete class, restarts, classes that never converged).
#pragma once
#include <string>

#include "core/options.h"
#include "core/progress.h"
#include "engine/precision.h"
#include "recover/units.h"

namespace lpld::recover {

// class (LPLD): a batch holds one class and matches that class's BN statistics; mixed
// (SRe2L): a batch holds one image of each class of a block and matches the teacher's running
// statistics (METHOD.md Stage 2).
enum class RecoverMode { class_wise, mixed };
const std::vector<Choice<RecoverMode>>& choices(RecoverMode);

struct RecoverConfig {
  // auto (default): from the teacher's resolution when the run starts (core/options.h
  // recipe_for_image_size), options set away from their defaults kept; or a recipe by name.
  std::string recipe = "auto";
  std::string teacher;
  std::string out;
  RecoverMode mode = RecoverMode::class_wise;
  int64_t ipc = 10;
  int64_t iterations = 1000;
  double lr = 0.1;
  double r_bn = 0.05;
  double first_bn_multiplier = 10;
  int64_t jitter = 2;         // circular roll offsets
  bool jitter_signed = true;  // offsets in [-jitter, jitter] (tiny) or [0, jitter] (imagenet)
  // class mode: images per unit (0: ipc); mixed: classes per batch (0: up to 100, SRe2L's)
  int64_t batch_size = 0;
  bool per_image_augment = false;  // official: one crop/flip per batch
  double crop_scale_min = 0.08;
  double tv_l2 = 0, l2 = 0;  // priors (ImageNet script; 0 by default)
  uint64_t seed = 0;
  std::string classes;             // "BEGIN:END" subset of classes (class mode)
  int64_t pack = 0;                // units per forward pass (0: automatic)
  int64_t checkpoint_every = 200;  // iterations between a group's resume states (0: never)
  int64_t stall_restarts = 2;      // restarts of a stalled unit (recover/stall.h); 0: none
  double stall_loss = 0.75;        // stall rule: last-window loss above this x the first's
  double stall_accuracy = 0.5;     // stall rule: fewer saved images classified right
  std::string device = "cpu";
  engine::Amp amp = engine::Amp::off;  // engine/precision.h
  bool channels_last = false;          // NHWC teacher and views

  void declare(OptionSet& o);
  // Official presets: "imagenet1k", "tiny", or "small" (our 28-32 px default); "auto" is
  // resolved when the teacher is known (resolve_recipe).
  void apply_recipe(const std::string& name);
  void validate() const;
  bool class_wise() const { return mode == RecoverMode::class_wise; }
  // The options that determine the images (not classes, pack, device).
  json identity() const;
  // --classes as [first, last) within [0, C); empty: every class.
  std::pair<int64_t, int64_t> class_range(int64_t num_classes) const;
};

struct ClassRecord {
  int64_t label = 0;
  double ce = 0, bn = 0;              // losses over the last trace window (mean of units)
  double ce_start = 0, bn_start = 0;  // and over the first
  double seconds = 0, teacher_accuracy = 0;
  int64_t restarts = 0;        // restarts of its units after a stall
  bool converged = true;       // every unit converged (stall.h)
  json units = json::array();  // class mode: each unit's record with its loss trace
  bool skipped = false;        // already complete on disk
  json to_json() const;        // the fields of class.json, plus `skipped`
  static ClassRecord from_json(const json& j);
};

struct RecoverResult {
  std::string recipe;  // the recipe the run used ("auto" resolved)
  std::vector<ClassRecord> classes;
  double seconds = 0;
  double setup_seconds = 0;                // before the first unit of work (core/clock.h)
  double iterations_per_second = 0;        // unit-iterations / s
  double image_iterations_per_second = 0;  // images optimized x iterations / s
  double teacher_top1 = 0;                 // on the images of this run (quantized)
  int64_t images = 0, pack = 0;
  int64_t image_bytes = 0;
  int64_t restarts = 0;         // restarts after a stall, this run
  int64_t units_optimized = 0;  // unit attempts this process optimized (not reloaded)
  // Unit attempts optimized only to keep a group whole (outside --classes, or already saved).
  int64_t units_outside = 0;
  json unconverged = json::array();  // units that stalled in every attempt: {class|batch, chunk}
  json to_json() const;
};

RecoverResult recover(const RecoverConfig& config, Progress& progress);

}  // namespace lpld::recover
