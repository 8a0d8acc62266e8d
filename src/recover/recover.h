// Stage 2 (METHOD.md): synthesize IPC images per class from a frozen teacher.
//
//   class mode (LPLD): a batch holds images of one class; BN matching against that
//                      class's statistics (squeeze/class_stats.h).
//   mixed mode (SRe2L): a batch holds one image of every class; BN matching against the
//                      teacher's global running statistics.
//
// Work is cut into units: in class mode, (class, chunk of <= batch_size images); in mixed
// mode, one cross-class batch per image index. A unit's images depend only on the seed,
// the config and the unit (its own init and augmentation streams), so `pack` units can
// share one forward/backward (the teacher is frozen and in eval mode: samples never
// interact) and a run split over processes by --classes writes the same files.
//
// Output: an ImageFolder of PNGs (DIR/NNN_<name>/NNNNN.png), per class a class.json
// with losses and seconds, recover.json fixing the config, and manifest.json.
#pragma once
#include <string>

#include "core/options.h"
#include "core/progress.h"

namespace lpld::recover {

struct RecoverConfig {
  std::string teacher;
  std::string out;
  std::string mode = "class";  // class | mixed
  int64_t ipc = 10;
  int64_t iterations = 1000;
  double lr = 0.1;
  double r_bn = 0.05;
  double first_bn_multiplier = 10;
  int64_t jitter = 2;              // circular roll offsets
  bool jitter_signed = true;       // offsets in [-jitter, jitter] (tiny) or [0, jitter] (imagenet)
  int64_t batch_size = 0;          // images per unit in class mode (0: ipc)
  bool per_image_augment = false;  // official: one crop/flip per batch
  double crop_scale_min = 0.08;
  double tv_l2 = 0, l2 = 0;  // priors (ImageNet script; 0 by default)
  uint64_t seed = 0;
  std::string classes;  // "BEGIN:END" subset of classes (class mode)
  int64_t pack = 0;     // units per forward pass (0: automatic)
  std::string device = "cpu";

  void declare(OptionSet& o);
  // Official presets: "imagenet1k", "tiny", or "small" (our 28-32 px default).
  void apply_recipe(const std::string& name);
  void validate() const;
  // The options that determine the images (not classes, pack, device).
  json identity() const;
};

// A unit of work: `count` images optimized together against one BN target.
struct Unit {
  int64_t id = 0;      // stream id (class mode: class * chunks + chunk; mixed: image index)
  int64_t label = -1;  // class mode: the class of every image; mixed: -1 (image i has class i)
  int64_t chunk = 0;   // class mode: chunk of the class; mixed: the image index
  int64_t count = 0;   // images in the unit
};

// The units that make the images of `classes` (class mode) or of every class (mixed).
std::vector<Unit> plan_units(const RecoverConfig& config, int64_t num_classes,
                             const std::vector<int64_t>& classes);

struct ClassRecord {
  int64_t label = 0;
  double ce = 0, bn = 0;              // losses at the last iteration
  double ce_start = 0, bn_start = 0;  // and at the first
  double seconds = 0, teacher_accuracy = 0;
  bool skipped = false;  // already complete on disk
  json to_json() const;  // the fields of class.json, plus `skipped`
  static ClassRecord from_json(const json& j);
};

struct RecoverResult {
  std::vector<ClassRecord> classes;
  double seconds = 0;
  double iterations_per_second = 0;        // unit-iterations / s
  double image_iterations_per_second = 0;  // images optimized x iterations / s
  double teacher_top1 = 0;                 // on the images of this run (quantized)
  int64_t images = 0, pack = 0;
  int64_t image_bytes = 0;
  json to_json() const;
};

RecoverResult recover(const RecoverConfig& config, Progress& progress);

}  // namespace lpld::recover
