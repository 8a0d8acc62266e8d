// Bring your own teacher: `lpld import` turns published weights into an lpld teacher
// checkpoint (models/checkpoint.h) -- torchvision / timm ResNets, a published Tiny-ImageNet
// checkpoint, a teacher trained by a PyTorch script -- so squeeze only gathers the class
// statistics (`lpld squeeze --init teacher.safetensors --epochs 0`), as the paper does for
// ImageNet.
//
// Reads `torch.save` files (core/torch_file.h: a state_dict, or a training-script dict with the
// weights under `model` / `state_dict` / ..., DDP's `module.` prefix stripped) and safetensors
// (timm, Hugging Face). Parameter names are lpld's, which are torchvision's (timm's ResNets use
// the same). Every tensor of the model must be found with its shape, and every tensor under the
// chosen prefix must be used: otherwise the error lists the missing, unexpected and mis-shaped
// ones -- nothing loads half.
#pragma once
#include <string>

#include "core/options.h"
#include "core/progress.h"

namespace lpld::import {

struct ImportConfig {
  std::string from;         // torch.save (.pt/.pth/.tar) or .safetensors file
  std::string arch;         // lpld model name (models/registry.h)
  std::string out;          // teacher checkpoint to write
  std::string data;         // optional dataset spec: classes, names, channels, size, normalization
  int64_t num_classes = 0;  // 0: from --data, else from the weights' classifier
  std::string class_names;  // comma-separated (default: --data's, else class_000, ...)
  int64_t channels = 0;     // 0: from --data, else 3
  int64_t image_size = 0;   // 0: from --data, else required
  std::string norm;         // name or MEAN,.../STD,... (default: --data's)
  std::string key;          // entry holding the weights ("" = found automatically)

  void declare(OptionSet& o);
  void validate() const;
};

struct ImportResult {
  std::string out, arch, source_format, prefix;  // prefix: where the weights were found
  int64_t num_classes = 0, image_size = 0, tensors = 0, ignored = 0;
  double seconds = 0;
  json to_json() const;
};

ImportResult import_teacher(const ImportConfig& config, Progress& progress);

}  // namespace lpld::import
