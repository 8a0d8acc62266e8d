#include "analyze/analyze.h"

#include "core/error.h"
#include "core/rng.h"
#include "core/runtime.h"
#include "data/augment.h"
#include "data/batches.h"
#include "labels/image_set.h"
#include "labels/label_store.h"
#include "models/checkpoint.h"

namespace lpld::analyze {

void AnalyzeConfig::declare(OptionSet& o) {
  o.add("model", &model, "checkpoint whose penultimate features are compared")
      .add("images", &images, "synthetic image folder")
      .add("real", &real, "real labelled set: an equal-sized sample per class is compared too")
      .add("labels", &labels, "label stores for the storage table (comma-separated)")
      .add("seed", &seed, "seed of the real sample")
      .add("device", &device, "cpu, cuda or cuda:N");
}

void AnalyzeConfig::validate() const {
  check_arg(!model.empty(), "--model", "a checkpoint is required");
  check_arg(!images.empty(), "--images", "the synthetic image folder is required");
}

json AnalyzeResult::to_json() const {
  return {{"synthetic_similarity", synthetic.overall},
          {"synthetic_similarity_per_class", synthetic.per_class},
          {"real_similarity", real.per_class.empty() ? json() : json(real.overall)},
          {"real_similarity_per_class", real.per_class},
          {"synthetic_top1", synthetic_top1},
          {"images", images},
          {"image_bytes", image_bytes},
          {"storage", storage}};
}

Similarity within_class_similarity(const torch::Tensor& features, const torch::Tensor& labels,
                                   int64_t num_classes) {
  Similarity s;
  auto f = torch::nn::functional::normalize(features.to(torch::kFloat64),
                                            torch::nn::functional::NormalizeFuncOptions().dim(1));
  double sum = 0;
  int64_t counted = 0;
  for (int64_t c = 0; c < num_classes; ++c) {
    auto fc = f.index({labels == c});
    const int64_t n = fc.size(0);
    if (n < 2) {
      s.per_class.push_back(std::nan(""));
      continue;
    }
    auto gram = fc.matmul(fc.t());
    const double off_diag = (gram.sum() - gram.diagonal().sum()).item<double>() / (n * (n - 1));
    s.per_class.push_back(off_diag);
    sum += off_diag;
    ++counted;
  }
  s.overall = counted ? sum / counted : std::nan("");
  return s;
}

namespace {
// Penultimate features and predictions of normalized images [N, C, S, S], in batches.
std::pair<torch::Tensor, torch::Tensor> features_of(models::ClassifierImpl& model,
                                                    const torch::Tensor& x) {
  torch::NoGradGuard g;
  std::vector<torch::Tensor> feats, preds;
  for (int64_t i = 0; i < x.size(0); i += 100) {
    auto f = model.features(x.narrow(0, i, std::min<int64_t>(100, x.size(0) - i)));
    feats.push_back(f.cpu());
    preds.push_back(model.head(f).argmax(1).cpu());
  }
  return {torch::cat(feats), torch::cat(preds)};
}
}  // namespace

AnalyzeResult analyze(const AnalyzeConfig& config, Progress& progress) {
  config.validate();
  const torch::Device device = parse_device(config.device);
  auto ck = models::load_checkpoint(config.model, device);
  auto& model = *ck.model;
  model.eval();
  const auto syn = labels::ImageSet::open(config.images);
  check_arg(syn.num_classes() == ck.meta.num_classes, "--images",
            "class count differs from the model's");
  const int64_t S = ck.meta.image_size;
  AnalyzeResult r;
  r.images = syn.size();
  r.image_bytes = syn.bytes();
  progress.message("analyze: synthetic features");
  // One class at a time: memory holds one class's images and features, whatever the set's size.
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(syn.num_classes()));
  for (int64_t i = 0; i < syn.size(); ++i) members[syn.labels()[i]].push_back(i);
  double sum = 0, correct = 0;
  int64_t counted = 0;
  for (int64_t c = 0; c < syn.num_classes(); ++c) {
    const auto& idx = members[c];
    if (idx.empty()) {
      r.synthetic.per_class.push_back(std::nan(""));
      continue;
    }
    auto x = data::eval_resize_crop(data::normalize(syn.read(idx), ck.meta.norm, device), S);
    auto [feat, pred] = features_of(model, x);
    auto one = within_class_similarity(feat, torch::zeros({feat.size(0)}, torch::kInt64), 1);
    r.synthetic.per_class.push_back(one.per_class[0]);
    if (!std::isnan(one.per_class[0])) sum += one.per_class[0], ++counted;
    correct += pred.eq(c).sum().item<double>();
  }
  r.synthetic.overall = counted ? sum / counted : std::nan("");
  r.synthetic_top1 = 100.0 * correct / static_cast<double>(syn.size());

  if (!config.real.empty()) {
    progress.message("analyze: real features");
    auto real = data::open_dataset(config.real);
    check_arg(real->num_classes() == syn.num_classes(), "--real",
              "class count differs from the images'");
    // The same number of images per class as the synthetic set, drawn with a fixed seed.
    auto labels = real->labels().contiguous();
    const int64_t* label_of = labels.data_ptr<int64_t>();
    auto syn_counts = torch::bincount(syn.labels_tensor(), {}, syn.num_classes());
    std::vector<int64_t> pick;
    auto order = Rng(derive_seed(config.seed, kTagSample)).permutation(real->size());
    std::vector<int64_t> need(syn_counts.data_ptr<int64_t>(),
                              syn_counts.data_ptr<int64_t>() + syn.num_classes());
    for (int64_t i : order) {
      const int64_t c = label_of[i];
      if (need[c] > 0) pick.push_back(i), --need[c];
    }
    std::vector<torch::Tensor> imgs;
    std::vector<int64_t> lab;
    for (int64_t i : pick) {
      auto img = real->image(i).unsqueeze(0);
      auto f = data::normalize(img, ck.meta.norm, device);
      imgs.push_back(data::eval_resize_crop(f, S));
      lab.push_back(label_of[i]);
    }
    auto [rf, rp] = features_of(model, torch::cat(imgs));
    r.real = within_class_similarity(rf, torch::tensor(lab, torch::kInt64), syn.num_classes());
  }
  for (const auto& path : config.labels) {
    labels::LabelStore s(path);
    r.storage.push_back({{"file", path},
                         {"prune_ratio", s.header().prune_ratio},
                         {"steps_kept", s.header().steps_kept},
                         {"label_bytes", s.file_bytes()},
                         {"labels_to_images", static_cast<double>(s.file_bytes()) /
                                                  std::max<int64_t>(1, syn.bytes())}});
  }
  return r;
}

}  // namespace lpld::analyze
