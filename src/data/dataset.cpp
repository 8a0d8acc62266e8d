// Dataset specs (open_dataset), the in-memory TensorDataset, subsets (the "@N" samples),
// bulk decoding into memory and per-set normalization constants.
//
// To add a reader: implement it next to the others (idx.cpp, cifar.cpp, image_folder.cpp),
// declare it in dataset.h, add its kind to kKinds and a branch to open_base below, and its
// mean/std (if standard) to known_normalization.
#include "data/dataset.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "core/error.h"
#include "core/rng.h"

namespace lpld::data {
namespace {

const std::vector<std::string> kKinds = {"fashion-mnist", "mnist",         "cifar10", "cifar100",
                                         "imagefolder",   "tiny-imagenet", "imagenet"};

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// "kind" of a spec: the part before the first ':' or '@'.
std::string spec_kind(const std::string& spec) { return spec.substr(0, spec.find_first_of(":@")); }

// A Dataset seen through an index list (samples of streaming sets).
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices, std::string spec)
      : base_(std::move(base)), indices_(std::move(indices)), spec_(std::move(spec)) {
    const auto idx =
        torch::from_blob(indices_.data(), {static_cast<int64_t>(indices_.size())}, torch::kInt64);
    labels_ = base_->labels().index_select(0, idx);
  }
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  int64_t num_classes() const override { return base_->num_classes(); }
  std::vector<std::string> class_names() const override { return base_->class_names(); }
  int64_t channels() const override { return base_->channels(); }
  std::array<int64_t, 2> fixed_size() const override { return base_->fixed_size(); }
  torch::Tensor image(int64_t index) const override { return base_->image(at(index)); }
  torch::Tensor image(int64_t index, int64_t min_side) const override {
    return base_->image(at(index), min_side);
  }
  int64_t label(int64_t index) const override { return base_->label(at(index)); }
  torch::Tensor labels() const override { return labels_; }
  std::string spec() const override { return spec_; }
  std::string source(int64_t index) const override { return base_->source(at(index)); }

 private:
  int64_t at(int64_t index) const { return indices_.at(static_cast<size_t>(index)); }
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
  torch::Tensor labels_;
  std::string spec_;
};

std::vector<std::string> digit_names(int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back(std::to_string(i));
  return names;
}

// Opens a spec without its "@N" suffix.
std::shared_ptr<Dataset> open_base(const std::string& spec) {
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string rest = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (std::find(kKinds.begin(), kKinds.end(), kind) == kKinds.end()) {
    throw std::invalid_argument("dataset: unknown kind '" + kind + "' in '" + spec +
                                "' (valid: " + join(kKinds, ", ") + ")");
  }
  const std::vector<std::string> splits = kind == "tiny-imagenet" || kind == "imagenet"
                                              ? std::vector<std::string>{"train", "val"}
                                              : std::vector<std::string>{"train", "test"};
  // rest = DIR[:split]; a DIR containing ':' is not supported.
  std::string dir = rest, split = "train";
  if (kind == "fashion-mnist" && (rest.empty() || rest == "train" || rest == "test")) {
    dir = kDebianFashionMnistDir;
    if (!rest.empty()) split = rest;
  } else if (const size_t last = rest.rfind(':'); last != std::string::npos) {
    dir = rest.substr(0, last);
    split = rest.substr(last + 1);
    check_arg(kind != "imagefolder", "dataset",
              "imagefolder takes no split (use imagefolder:DIR): '" + spec + "'");
  }
  if (std::find(splits.begin(), splits.end(), split) == splits.end()) {
    throw std::invalid_argument("dataset: unknown split '" + split + "' in '" + spec +
                                "' (valid for " + kind + ": " + join(splits, ", ") + ")");
  }
  check_arg(!dir.empty(), "dataset",
            "'" + spec + "' names no directory (expected " + kind + ":DIR" +
                (kind == "imagefolder" ? "" : "[:" + join(splits, "|") + "]") + ")");
  const bool train = split == "train";
  if (kind == "fashion-mnist")
    return read_idx_dataset(dir, train, fashion_mnist_class_names(), spec);
  if (kind == "mnist") return read_idx_dataset(dir, train, digit_names(10), spec);
  if (kind == "cifar10") return read_cifar10(dir, train, spec);
  if (kind == "cifar100") return read_cifar100(dir, train, spec);
  if (kind == "imagefolder") return open_image_folder(dir, spec);
  if (kind == "imagenet") return open_imagenet(dir, train, spec);
  return open_tiny_imagenet(dir, train, spec);
}

std::optional<Normalization> known_normalization(const std::string& kind, int64_t channels) {
  Normalization n;
  if (kind == "fashion-mnist") {
    n = {{0.2860f}, {0.3530f}};
  } else if (kind == "mnist") {
    n = {{0.1307f}, {0.3081f}};
  } else if (kind == "cifar10") {
    n = {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
  } else if (kind == "cifar100") {
    n = {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}};
  } else if (kind == "tiny-imagenet" || kind == "imagenet") {
    n = {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  } else {
    return std::nullopt;
  }
  if (static_cast<int64_t>(n.mean.size()) != channels) return std::nullopt;
  return n;
}

}  // namespace

namespace detail {

void parallel_for(int64_t n, int workers, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  int64_t threads = workers > 0 ? workers : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, n);
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  int64_t error_index = INT64_MAX;
  std::exception_ptr error;
  auto run = [&] {
    for (;;) {
      if (failed.load()) return;
      const int64_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (i < error_index) {
          error_index = i;
          error = std::current_exception();
        }
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(run);
  run();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace detail

TensorDataset::TensorDataset(torch::Tensor images, torch::Tensor labels,
                             std::vector<std::string> class_names, std::string spec)
    : class_names_(std::move(class_names)), spec_(std::move(spec)) {
  const std::string who = "TensorDataset '" + spec_ + "'";
  if (!images.defined() || images.dim() != 4 || images.scalar_type() != torch::kUInt8) {
    throw std::invalid_argument(who + ": images must be uint8 [N, C, H, W]" +
                                (images.defined()
                                     ? ", got " + std::string(c10::toString(images.scalar_type())) +
                                           " " + c10::str(images.sizes())
                                     : ""));
  }
  if (images.size(1) < 1 || images.size(2) < 1 || images.size(3) < 1) {
    throw std::invalid_argument(who + ": empty image shape " + c10::str(images.sizes()));
  }
  if (!labels.defined() || labels.dim() != 1 || labels.scalar_type() != torch::kInt64) {
    throw std::invalid_argument(who + ": labels must be int64 [N]");
  }
  if (labels.size(0) != images.size(0)) {
    throw std::invalid_argument(
        who + fmt::format(": {} images but {} labels", images.size(0), labels.size(0)));
  }
  if (class_names_.empty()) throw std::invalid_argument(who + ": no class names");
  if (labels.numel() > 0) {
    const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
    if (lo < 0 || hi >= num_classes()) {
      throw std::invalid_argument(
          who + fmt::format(": labels span [{}, {}], outside [0, {})", lo, hi, num_classes()));
    }
  }
  images_ = images.contiguous();
  labels_ = labels.contiguous();
}

std::shared_ptr<Dataset> subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices,
                                const std::string& spec) {
  for (const int64_t i : indices) {
    check_arg(i >= 0 && i < base->size(), "subset",
              fmt::format("index {} outside [0, {}) of '{}'", i, base->size(), base->spec()));
  }
  if (auto mem = std::dynamic_pointer_cast<const TensorDataset>(base)) {
    const auto idx = torch::tensor(indices, torch::kInt64);
    return std::make_shared<TensorDataset>(mem->images().index_select(0, idx),
                                           mem->labels().index_select(0, idx), mem->class_names(),
                                           spec);
  }
  return std::make_shared<SubsetDataset>(std::move(base), std::move(indices), spec);
}

std::shared_ptr<Dataset> open_dataset(const std::string& spec) {
  check_arg(!spec.empty(), "dataset", "empty spec (valid kinds: " + join(kKinds, ", ") + ")");
  // "@N" only counts as a sample suffix after the last ':' and '/' (paths may contain '@').
  const size_t at = spec.rfind('@');
  if (at == std::string::npos || spec.find_first_of(":/", at) != std::string::npos) {
    return open_base(spec);
  }
  const std::string tail = spec.substr(at + 1);
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), n);
  if (tail.empty() || ec != std::errc() || end != tail.data() + tail.size()) {
    throw std::invalid_argument("dataset: bad sample size '@" + tail + "' in '" + spec +
                                "' (expected @N, N > 0)");
  }
  check_arg(n > 0, "dataset", "sample size must be positive in '" + spec + "'");
  std::shared_ptr<Dataset> base = open_base(spec.substr(0, at));
  if (n > base->size()) {
    throw std::invalid_argument(fmt::format("dataset: sample of {} from '{}', which has only {}", n,
                                            base->spec(), base->size()));
  }
  // A fixed seed: the same spec always means the same images.
  std::vector<int64_t> order = Rng(derive_seed(0, kTagSample)).permutation(base->size());
  order.resize(static_cast<size_t>(n));
  std::sort(order.begin(), order.end());
  return subset(base, std::move(order), spec);
}

std::shared_ptr<TensorDataset> load_into_memory(std::shared_ptr<Dataset> dataset, int workers) {
  if (auto mem = std::dynamic_pointer_cast<TensorDataset>(dataset)) return mem;
  const int64_t n = dataset->size();
  check_file(n > 0, dataset->spec(), "dataset is empty");
  const torch::Tensor first = dataset->image(0).contiguous();
  const int64_t c = first.size(0), h = first.size(1), w = first.size(2);
  auto images = torch::empty({n, c, h, w}, torch::kUInt8);
  uint8_t* dst = images.data_ptr<uint8_t>();
  const size_t bytes = static_cast<size_t>(c * h * w);
  std::memcpy(dst, first.data_ptr<uint8_t>(), bytes);
  detail::parallel_for(n - 1, workers, [&](int64_t k) {
    const int64_t i = k + 1;
    const torch::Tensor img = dataset->image(i).contiguous();
    if (img.dim() != 3 || img.size(0) != c || img.size(1) != h || img.size(2) != w) {
      fail_file(dataset->source(i),
                fmt::format("image is {}, but {} is [{}, {}, {}]; loading into memory needs one "
                            "size for all images",
                            c10::str(img.sizes()), dataset->source(0), c, h, w));
    }
    std::memcpy(dst + static_cast<size_t>(i) * bytes, img.data_ptr<uint8_t>(), bytes);
  });
  return std::make_shared<TensorDataset>(images, dataset->labels().clone(), dataset->class_names(),
                                         dataset->spec());
}

Normalization normalization_for(const Dataset& dataset, int64_t max_images) {
  const int64_t c = dataset.channels();
  if (auto known = known_normalization(spec_kind(dataset.spec()), c)) return *known;
  const int64_t total = dataset.size();
  check_file(total > 0, dataset.spec(), "dataset is empty");
  const int64_t n = max_images > 0 ? std::min(max_images, total) : total;
  // Per-image partial sums, reduced in index order so the result does not depend on threads.
  std::vector<std::vector<double>> sums(static_cast<size_t>(n), std::vector<double>(2 * c + 1));
  detail::parallel_for(n, 0, [&](int64_t k) {
    const int64_t index = k * total / n;  // evenly spaced
    const torch::Tensor img = dataset.image(index).contiguous();
    if (img.size(0) != c) {
      fail_file(dataset.source(index),
                fmt::format("image has {} channels, the set {}", img.size(0), c));
    }
    const int64_t plane = img.size(1) * img.size(2);
    const uint8_t* p = img.data_ptr<uint8_t>();
    auto& s = sums[static_cast<size_t>(k)];
    for (int64_t ch = 0; ch < c; ++ch) {
      uint64_t sum = 0, sq = 0;
      for (int64_t i = 0; i < plane; ++i) {
        const uint64_t v = p[ch * plane + i];
        sum += v;
        sq += v * v;
      }
      s[ch] = static_cast<double>(sum);
      s[c + ch] = static_cast<double>(sq);
    }
    s[2 * c] = static_cast<double>(plane);
  });
  std::vector<double> total_sums(2 * c + 1, 0.0);
  for (const auto& s : sums) {
    for (size_t j = 0; j < s.size(); ++j) total_sums[j] += s[j];
  }
  Normalization out;
  const double count = total_sums[2 * c];
  for (int64_t ch = 0; ch < c; ++ch) {
    const double mean = total_sums[ch] / count / 255.0;
    const double var = total_sums[c + ch] / count / (255.0 * 255.0) - mean * mean;
    const double sd = std::sqrt(std::max(var, 0.0));
    out.mean.push_back(static_cast<float>(mean));
    // Constant images have no spread; 1 keeps normalization a plain shift.
    out.std.push_back(sd < 1e-6 ? 1.0f : static_cast<float>(sd));
  }
  return out;
}

int64_t default_image_size(const Dataset& dataset) {
  const auto size = dataset.fixed_size();
  if (size[0] > 0 && size[1] > 0) return std::max(size[0], size[1]);
  return 224;
}

Normalization parse_normalization(const std::string& text, int64_t channels,
                                  const std::string& option) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) {
    for (const char* name :
         {"imagenet", "tiny-imagenet", "cifar10", "cifar100", "mnist", "fashion-mnist"}) {
      if (text != name) continue;
      auto n = known_normalization(text, channels);
      check_arg(n.has_value(), option,
                "'" + text + "' is for other than " + std::to_string(channels) + "-channel images");
      return *n;
    }
    throw std::invalid_argument(option + ": unknown normalization '" + text +
                                "' (imagenet, cifar10, cifar100, mnist, fashion-mnist, or "
                                "MEAN,.../STD,...)");
  }
  auto numbers = [&](const std::string& part) {
    std::vector<float> v;
    size_t pos = 0;
    while (pos <= part.size()) {
      const size_t comma = std::min(part.find(',', pos), part.size());
      const std::string item = part.substr(pos, comma - pos);
      float x = 0;
      const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), x);
      check_arg(ec == std::errc() && end == item.data() + item.size() && !item.empty(), option,
                "'" + item + "' is not a number in '" + text + "'");
      v.push_back(x);
      pos = comma + 1;
    }
    return v;
  };
  Normalization n{numbers(text.substr(0, slash)), numbers(text.substr(slash + 1))};
  check_arg(static_cast<int64_t>(n.mean.size()) == channels &&
                static_cast<int64_t>(n.std.size()) == channels,
            option, "needs " + std::to_string(channels) + " means and stds, got '" + text + "'");
  for (float s : n.std) check_arg(s > 0, option, "a std must be > 0");
  return n;
}

}  // namespace lpld::data
