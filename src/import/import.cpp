#include "import/import.h"

#include <fmt/ranges.h>

#include <fstream>
#include <set>
#include <sstream>

#include "core/clock.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/torch_file.h"
#include "data/dataset.h"
#include "models/checkpoint.h"
#include "models/registry.h"

namespace lpld::import {
namespace {

using Weights = std::map<std::string, torch::Tensor>;

// Every tensor of `path`: a zip-format torch.save file or a safetensors file.
Weights read_weights(const std::string& path, std::string& format) {
  char magic[4] = {0, 0, 0, 0};
  {
    std::ifstream f(path, std::ios::binary);
    check_file(f.good(), path, "cannot open");
    f.read(magic, 4);
  }
  if (magic[0] == 'P' && magic[1] == 'K') {
    format = "torch.save";
    return load_torch_file(path);
  }
  format = "safetensors";
  try {
    return load_safetensors(path).tensors;
  } catch (const std::runtime_error& e) {
    fail_file(path,
              std::string("neither a torch.save zip file nor safetensors (") + e.what() + ")");
  }
}

// Where the model's tensors lie in the file: the prefix (with DDP's "module." when present)
// under which most of the model's names are found. `key` forces the entry.
std::string find_prefix(const Weights& w, const std::vector<std::string>& names,
                        const std::string& key) {
  std::vector<std::string> bases = {"",     "state_dict.", "model.",   "model_state_dict.",
                                    "net.", "network.",    "teacher.", "model_ema.",
                                    "ema."};
  if (!key.empty()) bases = {key == "." ? "" : key + "."};
  std::string best;
  size_t best_hits = 0;
  for (const auto& base : bases)
    for (const std::string& p : {base, base + "module."}) {
      size_t hits = 0;
      for (const auto& n : names) hits += w.count(p + n);
      if (hits > best_hits) best = p, best_hits = hits;
    }
  if (best_hits == 0 && !key.empty()) return bases.front();
  return best;
}

std::string listing(const std::vector<std::string>& v, size_t max = 12) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) out += (i ? ", " : "") + v[i];
  if (v.size() > max) out += fmt::format(", ... ({} in all)", v.size());
  return out;
}

// Copies the file's tensors into the model; every model tensor must be there with its shape
// and every tensor under `prefix` must be the model's. Returns how many were copied.
int64_t load_strict(models::ClassifierImpl& model, const Weights& w, const std::string& prefix,
                    const std::string& path) {
  std::vector<std::string> missing, misshaped, unexpected;
  std::set<std::string> used;
  torch::NoGradGuard ng;
  int64_t copied = 0;
  auto take = [&](const std::string& name, torch::Tensor& dst) {
    auto it = w.find(prefix + name);
    if (it == w.end()) {
      // Checkpoints from before BatchNorm counted its batches lack this buffer.
      if (name.size() < 19 || name.substr(name.size() - 19) != "num_batches_tracked")
        missing.push_back(name);
      return;
    }
    used.insert(it->first);
    if (it->second.sizes() != dst.sizes()) {
      misshaped.push_back(fmt::format("{} (file {}, model {})", name,
                                      fmt::join(it->second.sizes(), "x"),
                                      fmt::join(dst.sizes(), "x")));
      return;
    }
    const auto& src = it->second;
    check_file(!src.is_floating_point() || torch::isfinite(src).all().item<bool>(), path,
               "tensor " + it->first + " has non-finite values");
    if (name.find("running_var") != std::string::npos)
      check_file((src >= 0).all().item<bool>(), path,
                 "tensor " + it->first + " has negative running variances");
    dst.copy_(src.to(dst.scalar_type()));
    ++copied;
  };
  for (auto& p : model.named_parameters()) take(p.key(), p.value());
  for (auto& b : model.named_buffers()) take(b.key(), b.value());
  for (const auto& [k, t] : w)
    if (k.rfind(prefix, 0) == 0 && !used.count(k)) unexpected.push_back(k);
  if (!missing.empty() || !misshaped.empty() || !unexpected.empty()) {
    std::string msg = "weights do not fit the model";
    if (!prefix.empty()) msg += " (found under '" + prefix + "')";
    if (!missing.empty()) msg += "; missing: " + listing(missing);
    if (!misshaped.empty()) msg += "; wrong shape: " + listing(misshaped);
    if (!unexpected.empty()) msg += "; unexpected: " + listing(unexpected);
    fail_file(path, msg);
  }
  return copied;
}

// The model's classifier weight: the last 2-D parameter with two rows in a 2-class model.
std::string head_weight(const models::Classifier& two_class) {
  std::string name;
  for (const auto& p : two_class->named_parameters())
    if (p.value().dim() == 2 && p.value().size(0) == 2) name = p.key();
  return name;
}

}  // namespace

void ImportConfig::declare(OptionSet& o) {
  o.add("from", &from,
        "weights to import: torch.save file (state_dict or a dict holding one) "
        "or safetensors")
      .add("arch", &arch, "lpld architecture of the weights (resnet18, resnet50-imagenet, ...)")
      .add("out", &out, "teacher checkpoint to write")
      .add("data", &data, "dataset spec for class count and names, channels, size, normalization")
      .add("num_classes", &num_classes, "classes (0: from --data, else from the weights)")
      .add("class_names", &class_names, "comma-separated class names (default: --data's)")
      .add("channels", &channels, "input channels (0: from --data, else 3)")
      .add("image_size", &image_size, "input resolution (0: from --data)")
      .add("norm", &norm,
           "normalization: imagenet, cifar10, cifar100, mnist, fashion-mnist or MEAN,.../STD,... "
           "(default: --data's)")
      .add("key", &key,
           "entry of the file that holds the weights ('.' for the top level; "
           "default: found automatically)");
}

void ImportConfig::validate() const {
  check_arg(!from.empty(), "--from", "a weights file is required");
  check_arg(!arch.empty(), "--arch", "the architecture of the weights is required");
  check_arg(!out.empty(), "--out", "a checkpoint path is required");
  check_arg(num_classes >= 0 && channels >= 0 && image_size >= 0, "--num-classes",
            "counts and sizes must be >= 0");
  check_arg(image_size > 0 || !data.empty(), "--image-size",
            "give the input resolution (or --data to take it from)");
  check_arg(!norm.empty() || !data.empty(), "--norm",
            "give the normalization the weights were trained with (e.g. imagenet), or --data");
}

json ImportResult::to_json() const {
  return {{"out", out},
          {"arch", arch},
          {"source_format", source_format},
          {"prefix", prefix},
          {"num_classes", num_classes},
          {"image_size", image_size},
          {"tensors", tensors},
          {"ignored", ignored},
          {"seconds", seconds}};
}

ImportResult import_teacher(const ImportConfig& config, Progress& progress) {
  config.validate();
  const auto start = Clock::now();
  ImportResult r;
  const Weights w = read_weights(config.from, r.source_format);
  std::shared_ptr<data::Dataset> ds =
      config.data.empty() ? nullptr : data::open_dataset(config.data);
  models::Checkpoint ck;
  auto& m = ck.meta;
  m.arch = config.arch;
  m.channels = config.channels > 0 ? config.channels : ds ? ds->channels() : 3;
  m.image_size = config.image_size > 0 ? config.image_size : data::default_image_size(*ds);
  const auto names_model = models::make_model({config.arch, 2, m.channels, m.image_size});
  std::vector<std::string> names;
  for (const auto& p : names_model->named_parameters()) names.push_back(p.key());
  for (const auto& b : names_model->named_buffers()) names.push_back(b.key());
  r.prefix = find_prefix(w, names, config.key);
  m.num_classes = config.num_classes > 0 ? config.num_classes : ds ? ds->num_classes() : 0;
  if (m.num_classes == 0) {
    auto it = w.find(r.prefix + head_weight(names_model));
    check_file(it != w.end() && it->second.dim() == 2, config.from,
               "cannot tell the class count from the weights; give --num-classes or --data");
    m.num_classes = it->second.size(0);
  }
  if (!config.class_names.empty()) {
    m.class_names.clear();
    std::stringstream ss(config.class_names);
    for (std::string n; std::getline(ss, n, ',');) m.class_names.push_back(n);
  } else if (ds) {
    m.class_names = ds->class_names();
  } else {
    for (int64_t c = 0; c < m.num_classes; ++c)
      m.class_names.push_back(fmt::format("class_{:03d}", c));
  }
  check_arg(static_cast<int64_t>(m.class_names.size()) == m.num_classes, "--class-names",
            fmt::format("{} names for {} classes", m.class_names.size(), m.num_classes));
  m.norm = !config.norm.empty() ? data::parse_normalization(config.norm, m.channels)
                                : data::normalization_for(*ds);
  m.dataset = config.data.empty() ? "import:" + config.from : config.data;
  ck.model = models::make_model({config.arch, m.num_classes, m.channels, m.image_size});
  r.tensors = load_strict(*ck.model, w, r.prefix, config.from);
  r.ignored = static_cast<int64_t>(w.size()) - r.tensors;
  ck.model->eval();
  m.info = {{"stage", "import"},
            {"config", config_json(config)},
            {"source", config.from},
            {"source_hash", hash_file(config.from)},
            {"source_format", r.source_format},
            {"prefix", r.prefix}};
  models::save_checkpoint(config.out, ck);
  progress.message(fmt::format("import: {} tensors of {} from {} ({}{}), {} other entries ignored",
                               r.tensors, config.arch, config.from, r.source_format,
                               r.prefix.empty() ? "" : ", under '" + r.prefix + "'", r.ignored));
  r.out = config.out, r.arch = config.arch;
  r.num_classes = m.num_classes, r.image_size = m.image_size;
  r.seconds = seconds_since(start);
  return r;
}

}  // namespace lpld::import
