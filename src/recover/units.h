// The units of recover work (METHOD.md Stage 2) and what optimizing one yields.
//
// class mode: a unit is (class, chunk of <= batch_size images) of one class;
// mixed mode (SRe2L): a unit is one cross-class batch holding one image of each class of a
// block of batch_size classes (0: every class, one block), for one image index j; image k of
// the unit is class first + k. SRe2L's ImageNet-1K runs use 100 classes per batch.
// A unit's images depend only on the seed, the config, the unit id and its attempt (its own
// init and augmentation streams), so units can share a forward pass (`pack`); a run split
// over processes (--classes) optimizes the whole run's groups (recover.cpp) and so writes
// the same files as one run, up to the device's float arithmetic.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/io.h"

namespace lpld::recover {

struct RecoverConfig;

struct Unit {
  int64_t id = 0;       // stream id (class mode: class * chunks + chunk; mixed: j * blocks + block)
  int64_t label = -1;   // class mode: the class of every image; mixed: -1
  int64_t chunk = 0;    // class mode: chunk of the class; mixed: the image index j
  int64_t first = 0;    // mixed: class of the unit's image 0 (block * batch size)
  int64_t count = 0;    // images in the unit
  int64_t attempt = 0;  // 0, or k after k restarts from a stall (recover/stall.h)
};

// Mean losses over one window of iterations ending at `it` (exclusive); see stall.h.
struct TracePoint {
  int64_t it = 0;
  double ce = 0, bn = 0;
};

struct UnitResult {
  torch::Tensor images;  // uint8 [count, C, H, W]
  // Means over the last and first trace windows (less noisy than one iteration's loss:
  // every iteration draws another crop).
  double ce = 0, bn = 0, ce_start = 0, bn_start = 0;
  double seconds = 0, correct = 0;  // all attempts; teacher-correct saved images
  int64_t attempts = 1;
  bool converged = true;
  std::vector<TracePoint> trace;
  json to_json() const;  // everything but the images
};

// "class 3, chunk 0" or "batch 2 of classes 0..9", for messages.
std::string describe(const Unit& u);

// Images per unit: class mode min(batch_size, ipc) (0: ipc); mixed mode classes per block,
// min(batch_size, C) (0: C).
int64_t unit_batch(const RecoverConfig& config, int64_t num_classes);
// Units that hold images of one class: its chunks (class mode) or one per image index (mixed).
int64_t units_per_class(const RecoverConfig& config, int64_t num_classes);
// Mixed mode: blocks of classes (1 in class mode).
int64_t class_blocks(const RecoverConfig& config, int64_t num_classes);
// The ids of the units holding class c's images.
std::vector<int64_t> unit_ids_of_class(const RecoverConfig& config, int64_t num_classes, int64_t c);

// The units that make the images of `classes` (mixed mode: every unit of the blocks they
// touch; a unit then also holds classes outside `classes`).
std::vector<Unit> plan_units(const RecoverConfig& config, int64_t num_classes,
                             const std::vector<int64_t>& classes);

// The groups of one whole run (every class of the teacher): equal-sized units, at most `pack`
// per forward pass. Every run optimizes whole groups of this list: a split (--classes), a
// resumed run and each rank of a distributed run, so a unit always sees the forward batch it
// sees in one uninterrupted run. Units do not interact (optimize.h), but a batch's make-up
// changes float summation order, which thousands of iterations amplify into other PNGs.
std::vector<std::vector<Unit>> whole_run_groups(const RecoverConfig& config, int64_t num_classes,
                                                int64_t pack);

// Where a finished unit is kept until its classes are complete.
std::string unit_path(const std::string& out, int64_t id);
void save_unit(const std::string& path, const UnitResult& result);
UnitResult load_unit(const std::string& path);  // throws runtime_error naming `path`

}  // namespace lpld::recover
