#include "models/checkpoint.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/safetensors.h"
#include "models/registry.h"

namespace lpld::models {
namespace {
constexpr const char* kFormat = "lpld-model";

// A loaded tensor must be finite; a variance (BN running or class) must not be negative.
void check_finite_stats(const std::string& path, const std::string& name, const torch::Tensor& t) {
  if (!t.is_floating_point()) return;
  check_file(torch::isfinite(t).all().item<bool>(), path, "tensor " + name + " is not finite");
  const bool variance = name.find("var") != std::string::npos;
  check_file(!variance || (t >= 0).all().item<bool>(), path,
             "tensor " + name + " has negative variances");
}
}  // namespace

json ModelMeta::to_json() const {
  return {{"arch", arch},
          {"num_classes", num_classes},
          {"channels", channels},
          {"image_size", image_size},
          {"class_names", class_names},
          {"mean", norm.mean},
          {"std", norm.std},
          {"dataset", dataset},
          {"seed", seed},
          {"info", info}};
}

ModelMeta ModelMeta::from_json(const json& j, const std::string& path) {
  ModelMeta m;
  try {
    m.arch = j.at("arch").get<std::string>();
    m.num_classes = j.at("num_classes").get<int64_t>();
    m.channels = j.at("channels").get<int64_t>();
    m.image_size = j.at("image_size").get<int64_t>();
    m.class_names = j.at("class_names").get<std::vector<std::string>>();
    m.norm.mean = j.at("mean").get<std::vector<float>>();
    m.norm.std = j.at("std").get<std::vector<float>>();
    m.dataset = j.at("dataset").get<std::string>();
    m.seed = j.at("seed").get<uint64_t>();
    if (j.contains("info")) m.info = j.at("info");
  } catch (const json::exception& e) {
    fail_file(path, std::string("bad model metadata: ") + e.what());
  }
  check_file(static_cast<int64_t>(m.class_names.size()) == m.num_classes, path,
             "metadata lists " + std::to_string(m.class_names.size()) + " class names for " +
                 std::to_string(m.num_classes) + " classes");
  check_file(static_cast<int64_t>(m.norm.mean.size()) == m.channels &&
                 static_cast<int64_t>(m.norm.std.size()) == m.channels,
             path, "normalization does not match the channel count");
  return m;
}

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  TensorFile file;
  for (const auto& p : ck.model->named_parameters()) file.tensors["model." + p.key()] = p.value();
  for (const auto& b : ck.model->named_buffers()) file.tensors["model." + b.key()] = b.value();
  for (const auto& [name, t] : ck.class_stats.mean)
    file.tensors["class_stats." + name + ".mean"] = t;
  for (const auto& [name, t] : ck.class_stats.var) file.tensors["class_stats." + name + ".var"] = t;
  if (ck.class_stats.count.defined()) file.tensors["class_stats.count"] = ck.class_stats.count;
  file.metadata["format"] = kFormat;
  file.metadata["format_version"] = std::to_string(kCheckpointVersion);
  file.metadata["meta"] = ck.meta.to_json().dump();
  save_safetensors(path, file);
}

namespace {
// The class-wise BN statistics (squeeze's, recover's targets), if the file holds them: every
// BatchNorm layer's or none. Returns how many of the file's tensors they are.
size_t load_class_stats(const TensorFile& file, const std::string& path,
                        const torch::Device& device, Checkpoint& ck) {
  size_t used = 0;
  for (const auto& [name, bn] : ck.model->batchnorms()) {
    auto m = file.tensors.find("class_stats." + name + ".mean");
    auto v = file.tensors.find("class_stats." + name + ".var");
    if (m == file.tensors.end() && v == file.tensors.end()) continue;
    check_file(m != file.tensors.end() && v != file.tensors.end(), path,
               "class statistics of " + name + " are incomplete");
    const std::vector<int64_t> shape = {ck.meta.num_classes, bn->options.num_features()};
    check_file(m->second.sizes() == shape && v->second.sizes() == shape, path,
               "class statistics of " + name + " have the wrong shape");
    check_file(
        m->second.scalar_type() == torch::kFloat32 && v->second.scalar_type() == torch::kFloat32,
        path, "class statistics of " + name + " are not float32");
    check_finite_stats(path, "class_stats." + name + ".mean", m->second);
    check_finite_stats(path, "class_stats." + name + ".var", v->second);
    ck.class_stats.mean[name] = m->second.to(device);
    ck.class_stats.var[name] = v->second.to(device);
    used += 2;
  }
  if (!ck.class_stats.mean.empty())
    check_file(ck.class_stats.mean.size() == ck.model->batchnorms().size(), path,
               "class statistics cover only some BatchNorm layers");
  if (auto c = file.tensors.find("class_stats.count"); c != file.tensors.end()) {
    check_file(c->second.scalar_type() == torch::kInt64 &&
                   c->second.sizes() == std::vector<int64_t>{ck.meta.num_classes},
               path, "class_stats.count has the wrong dtype or shape");
    ck.class_stats.count = c->second;
    ++used;
  }
  return used;
}
}  // namespace

Checkpoint load_checkpoint(const std::string& path, const torch::Device& device) {
  TensorFile file = load_safetensors(path);
  auto md = [&](const std::string& key) {
    auto it = file.metadata.find(key);
    check_file(it != file.metadata.end(), path, "not an lpld model checkpoint (no '" + key + "')");
    return it->second;
  };
  check_file(md("format") == kFormat, path,
             "not an lpld model checkpoint (format " + md("format") + ")");
  const std::string version = md("format_version");
  check_file(version == "1" || version == std::to_string(kCheckpointVersion), path,
             "unsupported checkpoint format version " + version);
  json mj;
  try {
    mj = json::parse(md("meta"));
  } catch (const json::exception& e) {
    fail_file(path, std::string("metadata is not valid JSON: ") + e.what());
  }
  Checkpoint ck;
  ck.meta = ModelMeta::from_json(mj, path);
  try {
    ck.model =
        make_model({ck.meta.arch, ck.meta.num_classes, ck.meta.channels, ck.meta.image_size});
  } catch (const std::invalid_argument& e) {
    fail_file(path, std::string("cannot build its model: ") + e.what());
  }
  if (!file.checksum_verified)
    spdlog::warn(
        "{}: no data checksum (written by an older lpld): checked for structure and "
        "sanity only",
        path);
  torch::NoGradGuard no_grad;
  size_t used = 0;
  auto load_into = [&](const std::string& name, torch::Tensor& target) {
    auto it = file.tensors.find("model." + name);
    check_file(it != file.tensors.end(), path, "missing tensor model." + name);
    const auto& src = it->second;
    check_file(src.sizes() == target.sizes(), path,
               "tensor model." + name + " has the wrong shape");
    check_file(src.scalar_type() == target.scalar_type(), path,
               "tensor model." + name + " is " + c10::toString(src.scalar_type()) + ", not " +
                   c10::toString(target.scalar_type()));
    check_finite_stats(path, "model." + name, src);
    target.copy_(src);
    ++used;
  };
  for (auto& p : ck.model->named_parameters()) load_into(p.key(), p.value());
  for (auto& b : ck.model->named_buffers()) load_into(b.key(), b.value());
  used += load_class_stats(file, path, device, ck);
  if (used != file.tensors.size()) {
    std::string extra;
    for (const auto& [name, t] : file.tensors) {
      const bool known = name.rfind("model.", 0) == 0 || name.rfind("class_stats.", 0) == 0;
      if (!known) extra += (extra.empty() ? "" : ", ") + name;
    }
    fail_file(path, "holds tensors the model does not have" +
                        (extra.empty() ? std::string() : ": " + extra));
  }
  // (last, so that a hand-edited file's structural fault is named first)
  check_file(version == "1" || file.header_verified, path,
             "no header checksum: the file is damaged");
  ck.model->to(device);
  ck.model->eval();
  return ck;
}

}  // namespace lpld::models
