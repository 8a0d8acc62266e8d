// Reading the tensors of a `torch.save` file (PyTorch >= 1.6 zip format): a zip archive whose
// `data.pkl` is a pickle of the saved object, with each tensor's storage in `data/<key>`.
// State dicts as torchvision ships them (an OrderedDict with `_metadata`), training-script
// dicts ({"model": ..., "epoch": ..., "optimizer": ...}) and nested dicts are read; every
// tensor comes out under its dotted path ("model.layer1.0.conv1.weight"); values that are not
// tensors (numbers, strings, optimizer state, argparse namespaces) are skipped.
//
// The zip container is libtorch's own reader (caffe2::serialize::PyTorchStreamReader). The
// pickle is interpreted here by a small stack machine over the opcodes torch.save emits:
// libtorch's unpickler (torch::pickle_load) rejects the OrderedDict-with-attributes that
// every state_dict() is, and no Debian library reads pickles from C++. Nothing is executed:
// a GLOBAL only names what a REDUCE builds, and only tensor rebuilding and dict types are
// understood; anything else becomes an opaque value.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

namespace lpld {

// Throws runtime_error naming `path`: not a zip-format torch.save file (e.g. the legacy
// pre-1.6 format, or TorchScript), a malformed pickle, or a missing storage record.
std::map<std::string, torch::Tensor> load_torch_file(const std::string& path);

}  // namespace lpld
