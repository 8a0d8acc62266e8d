// Dataset spec strings (KIND:DIR[:split][@N]): the first byte picks the kind, the rest is the
// spec's tail below a small sandbox (so the fuzzer exercises parsing, not the whole disk).
#include "data/dataset.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lpld::fuzz::run([&] {
    static const char* kinds[] = {"mnist",       "fashion-mnist", "cifar10",    "cifar100",
                                  "imagefolder", "tiny-imagenet", "nosuchkind", ""};
    const std::string kind = size ? kinds[data[0] % 8] : "";
    std::string tail(reinterpret_cast<const char*>(data) + (size ? 1 : 0), size ? size - 1 : 0);
    for (auto& ch : tail)
      if (ch == '\0') ch = '_';
    std::string spec = kind + ":" + lpld::fuzz::scratch() + "/" + tail;
    if (size && data[0] >= 128) spec = kind + tail;  // no folder at all
    lpld::data::open_dataset(spec);
  });
}
