// IDX reader (MNIST / Fashion-MNIST): the input is split into an images and a labels file.
#include "data/dataset.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lpld::fuzz::run([&] {
    const size_t cut = size < 2 ? 0 : (data[0] | (data[1] << 8)) % (size - 1) + 2;
    const std::string dir = lpld::fuzz::scratch() + "/idx";
    std::filesystem::create_directories(dir);
    const std::string base = std::filesystem::path(dir).filename().string();
    lpld::fuzz::write(base + "/t10k-images-idx3-ubyte", data + std::min(size, size_t{2}),
                      cut > 2 ? cut - 2 : 0);
    lpld::fuzz::write(base + "/t10k-labels-idx1-ubyte", data + std::min(cut, size),
                      size - std::min(cut, size));
    lpld::data::read_idx_dataset(dir, false, lpld::data::fashion_mnist_class_names(), "fuzz");
  });
}
