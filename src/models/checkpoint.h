// Model checkpoints: one safetensors file with the weights and buffers ("model.<name>"),
// optional class-wise BatchNorm statistics ("class_stats.<bn>.mean|var", [classes, ch],
// and "class_stats.count", [classes]) and metadata describing the model and the data it
// was trained on. Teachers (squeeze) and students (train) use the same format.
// Layout: docs/formats.md.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/io.h"
#include "data/dataset.h"
#include "models/classifier.h"

namespace lpld::models {

// 2: the safetensors header carries its own checksum, and a version-2 file without it is
// damaged; version 1 (no header checksum) is still read.
constexpr int kCheckpointVersion = 2;

struct ModelMeta {
  std::string arch;
  int64_t num_classes = 0, channels = 0, image_size = 0;
  std::vector<std::string> class_names;
  data::Normalization norm;
  std::string dataset;  // spec of the training set
  uint64_t seed = 0;
  json info = json::object();  // stage, resolved config, accuracy...

  json to_json() const;
  static ModelMeta from_json(const json& j, const std::string& path);
};

// Class-wise statistics of every BN layer's input (METHOD.md Stage 1), by BN name.
struct ClassStats {
  std::map<std::string, torch::Tensor> mean, var;  // [classes, ch], float32
  torch::Tensor count;                             // [classes] samples seen, int64
  bool empty() const { return mean.empty(); }
};

struct Checkpoint {
  Classifier model;
  ModelMeta meta;
  ClassStats class_stats;
};

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
// Rebuilds the model from its metadata, loads and checks every tensor (names, shapes),
// moves it to `device` and sets eval mode. Throws runtime_error naming `path`.
Checkpoint load_checkpoint(const std::string& path, const torch::Device& device);

}  // namespace lpld::models
