// `lpld import` (core/stage.h).
#include "core/stage.h"

#include <fmt/format.h>

#include "import/import.h"

namespace lpld {
namespace {

std::string import_summary(const import::ImportConfig& c, const import::ImportResult& r,
                           const DistEnv&) {
  return fmt::format("import {} ({}{}): {} tensors, {} classes, {} px -> {} ({:.1f}s)", c.from,
                     r.source_format, r.prefix.empty() ? "" : ", under '" + r.prefix + "'",
                     r.tensors, r.num_classes, r.image_size, r.out, r.seconds);
}

}  // namespace

const StageDescriptor& import_stage() {
  static const StageDescriptor d = make_stage<import::ImportConfig, import::ImportResult>(
      "import", "a teacher from published weights (torch.save or safetensors): then squeeze --init",
      "",
      /*distributed=*/false, import::import_teacher, import_summary);
  return d;
}

}  // namespace lpld
