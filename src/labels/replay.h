// The augmentation of a label step, regenerated from (seed, step): which images, their
// crops and flips, and the CutMix. relabel renders a step to compute its logits; train
// renders the same step to replay them (METHOD.md Stages 3-4). Everything comes from
// lpld::Rng streams, so the same step gives the same pixels on any machine.
#pragma once
#include <torch/torch.h>

#include <map>
#include <vector>

#include "data/augment.h"
#include "labels/label_store.h"

namespace lpld::labels {

// The version of the view generation below (draw order of epoch orders, crops, flips,
// CutMix). A store records it; a change to any draw must bump it, and the known-answer tests
// (tests/test_relabel.cpp, "KnownAnswer") pin its numbers.
constexpr int kReplayVersion = 1;

struct StepPlan {
  int64_t step = 0;
  std::vector<int64_t> indices;   // images of the batch, in order
  std::vector<data::View> views;  // one per image
  bool cutmix = false;
  data::CutMix mix;
};

// Epoch e's image order: a permutation of 0..N-1 from stream (seed, kTagEpochOrder, e).
std::vector<int64_t> epoch_order(const LabelHeader& header, int64_t epoch);

StepPlan plan_step(const LabelHeader& header, int64_t step,
                   const std::vector<int64_t>* order = nullptr);

// plan_step with the epoch orders cached (the last few epochs: a permutation of N images is
// the costly part of a plan). relabel, train and `lpld labels steps` plan through it.
class StepPlanner {
 public:
  explicit StepPlanner(const LabelHeader& header) : header_(header) {}
  StepPlan plan(int64_t step);

 private:
  const LabelHeader& header_;
  std::map<int64_t, std::vector<int64_t>> orders_;
};

// step_u8: the step's images (plan.indices, in order), uint8 [n, C, H, W] on any device;
// normalized by `norm` on its device -> the step's batch [n, C, size, size], views rendered
// and CutMix applied.
torch::Tensor render_step(const torch::Tensor& step_u8, const data::NormTensors& norm,
                          const StepPlan& plan, int64_t size);

// A digest (xxh64) of everything a step replays: image indices, crop boxes (float32 bits),
// flips, and the CutMix (lambda, box, partners). A store keeps it per step; train checks that
// what it renders has the digest the labels were made for.
uint64_t plan_digest(const StepPlan& plan);

// Explicit views (--store-views), so that any tool can replay a step without lpld's random
// streams: image indices u32, boxes 4 x f32 (x0, y0, w, h as fractions), flips u8, then with
// CutMix its lambda f32, box 4 x u16 (x1, y1, x2, y2 in pixels) and partners u16.
std::string encode_views(const LabelHeader& header, const StepPlan& plan);
StepPlan decode_views(const LabelHeader& header, int64_t step, const std::string& block);

// A step as JSON, for `lpld labels steps` and analysis scripts: step, epoch, batch, images
// (indices), classes, views ([x0, y0, w, h] fractions + flip), and the CutMix (null without
// it): lambda (the Beta draw), box [x1, y1, x2, y2] in pixels, pasted (fraction of each
// image's pixels that come from its partner, after clipping) and partners (batch positions).
json describe_step(const LabelHeader& header, const StepPlan& plan);

}  // namespace lpld::labels
