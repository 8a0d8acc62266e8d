// safetensors reader, then the checkpoint metadata parser on what it accepts.
#include "core/safetensors.h"
#include "fuzz_common.h"
#include "models/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lpld::fuzz::run([&] {
    auto f = lpld::load_safetensors(lpld::fuzz::write("f.safetensors", data, size));
    if (f.metadata.count("meta"))
      lpld::models::ModelMeta::from_json(lpld::json::parse(f.metadata["meta"]), "fuzz");
  });
}
