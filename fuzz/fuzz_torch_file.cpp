// torch.save reader (core/torch_file.h): libtorch's zip reader, then lpld's pickle machine.
#include "core/torch_file.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lpld::fuzz::run([&] { lpld::load_torch_file(lpld::fuzz::write("t.pth", data, size)); });
}
