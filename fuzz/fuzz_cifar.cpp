// CIFAR-10 binary reader: the input is the test batch.
#include "data/dataset.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lpld::fuzz::run([&] {
    const std::string dir = lpld::fuzz::scratch() + "/cifar";
    std::filesystem::create_directories(dir);
    lpld::fuzz::write("cifar/test_batch.bin", data, size);
    lpld::data::read_cifar10(dir, false, "fuzz");
  });
}
