// The synthetic image set that recover wrote, read back as one in-memory tensor with
// its identity: the relative paths in ImageFolder order and a content hash. relabel
// records the hash in the label store; train refuses a store made for other images.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace lpld::labels {

struct ImageSet {
  std::shared_ptr<data::TensorDataset> images;  // uint8 [N, C, H, W], labels [N]
  std::vector<std::string> paths;               // relative to the folder
  std::string hash;                             // xxh64 over paths and file contents
  int64_t bytes = 0;                            // total file bytes
};

// Throws runtime_error naming the folder if it is missing, empty or unreadable.
ImageSet load_image_set(const std::string& dir);

}  // namespace lpld::labels
