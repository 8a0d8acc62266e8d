// `lpld recover` (core/stage.h).
#include "core/stage.h"

#include <fmt/format.h>

#include "recover/recover.h"

namespace lpld {
namespace {

std::string recover_summary(const recover::RecoverConfig& c, const recover::RecoverResult& r,
                            const DistEnv& env) {
  if (env.rank > 0)
    return fmt::format("recover {}: its share in {:.1f}s, {:.1f} it/s", env.where(), r.seconds,
                       r.iterations_per_second);
  return fmt::format(
      "recover {} ipc {}: {} images ({} bytes) in {:.1f}s, {:.1f} it/s, "
      "{:.0f} image-it/s, teacher top-1 on them {:.1f}%, {} restart(s){}",
      choice_name(c.mode), c.ipc, r.images, r.image_bytes, r.seconds, r.iterations_per_second,
      r.image_iterations_per_second, r.teacher_top1, r.restarts,
      r.unconverged.empty() ? "" : "; NOT CONVERGED: " + r.unconverged.dump());
}

}  // namespace

const StageDescriptor& recover_stage() {
  static const StageDescriptor d = make_stage<recover::RecoverConfig, recover::RecoverResult>(
      "recover", "synthesize IPC images per class from the teacher (Stage 2)",
      "auto (from the teacher), imagenet1k, tiny or small", /*distributed=*/true, recover::recover,
      recover_summary);
  return d;
}

}  // namespace lpld
