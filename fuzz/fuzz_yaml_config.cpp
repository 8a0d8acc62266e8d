// Pipeline YAML config: yaml-cpp, then every stage's declared options (core/options.h).
#include "fuzz_common.h"
#include "pipeline/pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lpld::fuzz::run(
      [&] { lpld::pipeline::load_pipeline_config(lpld::fuzz::write("c.yaml", data, size)); });
}
