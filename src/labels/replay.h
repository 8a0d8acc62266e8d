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

// A step as JSON, for `lpld labels steps` and analysis scripts: step, epoch, batch, images
// (indices), classes, views ([x0, y0, w, h] fractions + flip), and the CutMix (null without
// it): lambda (the Beta draw), box [x1, y1, x2, y2] in pixels, pasted (fraction of each
// image's pixels that come from its partner, after clipping) and partners (batch positions).
json describe_step(const LabelHeader& header, const StepPlan& plan);

}  // namespace lpld::labels
