// Image decoding (jpeg; the decoder picks the format from the bytes, as for any image file).
#include "data/image_io.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lpld::fuzz::run([&] {
    lpld::data::decode_image(std::string(reinterpret_cast<const char*>(data), size), "fuzz.jpeg");
  });
}
