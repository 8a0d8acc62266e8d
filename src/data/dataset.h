// Labelled image sets. Every reader yields uint8 images [C, H, W] and an int64 label;
// augmentation and normalization happen later, batched, on the training device.
//
// A dataset is named by one spec string (README "Dataset specs"):
// clang-format off
//   fashion-mnist[:train|test]        Debian's dataset-fashion-mnist files
//   fashion-mnist:DIR[:train|test]    the same format from DIR
//   mnist:DIR[:train|test]            IDX files (gzipped or raw) in DIR
//   cifar10:DIR[:train|test]          CIFAR-10 binary version (data_batch_*.bin, test_batch.bin)
//   cifar100:DIR[:train|test]         CIFAR-100 binary version (train.bin, test.bin; fine labels)
//   imagefolder:DIR                   DIR/<class>/<image>.{png,jpg,jpeg}
//   tiny-imagenet:DIR[:train|val]     DIR/train/<wnid>/images/*, DIR/val/images + val_annotations.txt
//   imagenet:DIR[:train|val]          DIR/train/<wnid>/*, DIR/val/* + LOC_val_solution.csv (or
//                                     val_labels.txt, or DIR/val/<wnid>/*); ImageNet-1K and 21K
// clang-format on
// Any spec may end in "@N": a fixed, seeded sample of N images (for quick runs and tests).
#pragma once
#include <torch/torch.h>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lpld::data {

// Per-channel mean and std of pixel values in [0, 1].
struct Normalization {
  std::vector<float> mean, std;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t num_classes() const = 0;
  virtual std::vector<std::string> class_names() const = 0;
  virtual int64_t channels() const = 0;
  // {H, W} when every image has that size, else {0, 0} (sizes vary; decoded per image).
  virtual std::array<int64_t, 2> fixed_size() const = 0;
  // uint8 [C, H, W]. Thread-safe. Throws runtime_error naming the file on a decode error.
  virtual torch::Tensor image(int64_t index) const = 0;
  // The same, possibly decoded at a reduced size whose short side is still >= min_side
  // (JPEG files: libjpeg-turbo's DCT scaling, 1/8 steps), when only that size is needed.
  virtual torch::Tensor image(int64_t index, int64_t min_side) const { return image(index); }
  virtual int64_t label(int64_t index) const = 0;
  // All labels, int64 [N].
  virtual torch::Tensor labels() const = 0;
  // The spec it was opened from.
  virtual std::string spec() const = 0;
  // The file an image came from, for error messages ("" for in-memory sets).
  virtual std::string source(int64_t /*index*/) const { return spec(); }
};

// Images held in memory as one uint8 tensor [N, C, H, W].
class TensorDataset : public Dataset {
 public:
  TensorDataset(torch::Tensor images, torch::Tensor labels, std::vector<std::string> class_names,
                std::string spec);
  int64_t size() const override { return images_.size(0); }
  int64_t num_classes() const override { return static_cast<int64_t>(class_names_.size()); }
  std::vector<std::string> class_names() const override { return class_names_; }
  int64_t channels() const override { return images_.size(1); }
  std::array<int64_t, 2> fixed_size() const override { return {images_.size(2), images_.size(3)}; }
  torch::Tensor image(int64_t index) const override { return images_[index]; }
  int64_t label(int64_t index) const override { return labels_[index].item<int64_t>(); }
  torch::Tensor labels() const override { return labels_; }
  std::string spec() const override { return spec_; }
  const torch::Tensor& images() const { return images_; }

 private:
  torch::Tensor images_, labels_;
  std::vector<std::string> class_names_;
  std::string spec_;
};

// Opens a dataset by spec. Small sets (IDX, CIFAR) are decoded into memory at once;
// image folders are indexed (paths, labels) and decoded per image on demand.
// Throws invalid_argument for an unknown spec, runtime_error naming the file for bad data.
std::shared_ptr<Dataset> open_dataset(const std::string& spec);

// Decodes every image into one TensorDataset (workers threads). Requires a fixed size.
// Returns `dataset` itself when it already is a TensorDataset.
std::shared_ptr<TensorDataset> load_into_memory(std::shared_ptr<Dataset> dataset, int workers = 0);

// The standard mean/std for known sets (fashion-mnist, mnist, cifar10, cifar100, imagenet;
// tiny-imagenet uses ImageNet's); otherwise (image folders) estimated from up to
// `max_images` evenly spaced images of the set.
Normalization normalization_for(const Dataset& dataset, int64_t max_images = 2000);

// The natural training resolution: the fixed size of the set if it has one, else 224.
int64_t default_image_size(const Dataset& dataset);

// Normalization by name -- imagenet (also tiny-imagenet), cifar10, cifar100, mnist,
// fashion-mnist -- or given as "m1,m2,m3/s1,s2,s3". Throws invalid_argument naming `option`
// for an unknown name, a malformed list, a std <= 0, or a channel count other than `channels`.
Normalization parse_normalization(const std::string& text, int64_t channels,
                                  const std::string& option = "--norm");

// ---- Readers behind open_dataset (usable directly; `spec` is recorded in the result) ----

// Where Debian's dataset-fashion-mnist package puts its files.
inline constexpr const char* kDebianFashionMnistDir = "/usr/share/datasets/fashion-mnist";
std::vector<std::string> fashion_mnist_class_names();

// IDX files DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (MNIST, Fashion-MNIST).
std::shared_ptr<TensorDataset> read_idx_dataset(const std::string& dir, bool train,
                                                std::vector<std::string> class_names,
                                                const std::string& spec);
// CIFAR binary versions; DIR may also be the folder holding cifar-10-batches-bin /
// cifar-100-binary.
std::shared_ptr<TensorDataset> read_cifar10(const std::string& dir, bool train,
                                            const std::string& spec);
std::shared_ptr<TensorDataset> read_cifar100(const std::string& dir, bool train,
                                             const std::string& spec);
// Streaming sets: paths and labels are indexed, images decoded in image(i).
std::shared_ptr<Dataset> open_image_folder(const std::string& dir, const std::string& spec);
std::shared_ptr<Dataset> open_tiny_imagenet(const std::string& dir, bool train,
                                            const std::string& spec);
// ImageNet's own layout (data/imagenet.cpp): classes by sorted wnid, as torchvision's.
std::shared_ptr<Dataset> open_imagenet(const std::string& dir, bool train, const std::string& spec);

// The images `indices` of `base`, in that order. An in-memory base gives a TensorDataset.
std::shared_ptr<Dataset> subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices,
                                const std::string& spec);

namespace detail {
// Runs fn(0..n-1) on `workers` threads (0: one per core). Rethrows the exception of the
// lowest failing index among those run; stops handing out work after a failure.
void parallel_for(int64_t n, int workers, const std::function<void(int64_t)>& fn);
}  // namespace detail

}  // namespace lpld::data
