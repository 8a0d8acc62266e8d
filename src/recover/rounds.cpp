#include "recover/rounds.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>

#include "recover/stall.h"

namespace lpld::recover {
namespace {

// What happens to each optimized unit: saved and staged, kept as the best attempt so far and
// restarted, or dropped (outside the run).
class Settler {
 public:
  Settler(const RecoverConfig& config, const std::set<int64_t>& wanted, RunState& state,
          const std::vector<std::string>& names, RecoverResult& result, Progress& progress)
      : config_(config),
        rule_{config.r_bn, config.stall_loss, config.stall_accuracy},
        wanted_(wanted),
        state_(state),
        names_(names),
        result_(result),
        progress_(progress) {}

  // Returns whether `u` runs again (attempt + 1).
  bool settle(const Unit& u, UnitResult r) {
    r.converged =
        config_.iterations < kMinStallIterations || !stalled(r.trace, r.correct, u.count, rule_);
    const bool restart = !r.converged && u.attempt < config_.stall_restarts;
    if (!wanted_.count(u.id)) {
      ++result_.units_outside;
      return restart;
    }
    ++result_.units_optimized;
    auto prior = best_.find(u.id);
    if (prior != best_.end()) r.seconds += prior->second.seconds;
    if (!r.converged) {
      const auto loss = [&](const UnitResult& x) { return x.ce + config_.r_bn * x.bn; };
      if (prior != best_.end() && loss(prior->second) <= loss(r)) {
        prior->second.seconds = r.seconds, prior->second.attempts = r.attempts;
        r = prior->second;
      }
      if (restart) {
        warn_restart(u, r);
        best_[u.id] = std::move(r);
        return true;
      }
    }
    result_.restarts += r.attempts - 1;
    best_.erase(u.id);
    save_unit(unit_path(config_.out, u.id), r);
    state_.add(u, std::move(r));
    return restart;
  }

 private:
  void warn_restart(const Unit& u, const UnitResult& r) const {
    const std::string who =
        u.label >= 0 ? "class " + names_[static_cast<size_t>(u.label)] : describe(u);
    progress_.warning(
        fmt::format("recover: {} stalled (ce {:.3f}, bn {:.2f} from {:.2f}, {:.0f} of its images "
                    "classified right); restart {} of {}",
                    who, r.ce, r.bn, r.bn_start, r.correct, u.attempt + 1, config_.stall_restarts));
  }

  const RecoverConfig& config_;
  const StallRule rule_;
  const std::set<int64_t>& wanted_;
  RunState& state_;
  const std::vector<std::string>& names_;
  RecoverResult& result_;
  Progress& progress_;
  std::map<int64_t, UnitResult> best_;  // stalled attempts so far, by unit id
};

}  // namespace

RoundsWork optimize_units(const GroupContext& ctx, std::vector<std::vector<Unit>> groups,
                          const std::set<int64_t>& wanted, RunState& state,
                          const std::vector<std::string>& names, RecoverResult& result,
                          Progress& progress) {
  const auto& config = *ctx.config;
  Settler settler(config, wanted, state, names, result, progress);
  RoundsWork work;
  for (int round = 0; !groups.empty(); ++round) {
    int64_t units = 0;
    for (const auto& g : groups) units += static_cast<int64_t>(g.size());
    progress.start(round == 0 ? "recover " + choice_name(config.mode) : "recover restarts",
                   units * config.iterations, "it");
    int64_t work_done = 0;
    std::vector<std::vector<Unit>> again;
    for (const auto& group : groups) {
      auto results = optimize_group(ctx, group, progress, work_done);
      std::vector<Unit> again_of_group;  // its stalled units, restarted together
      for (size_t k = 0; k < group.size(); ++k) {
        const Unit& u = group[k];
        work.unit_iterations += config.iterations;
        work.image_iterations += u.count * config.iterations;
        if (settler.settle(u, std::move(results[k]))) {
          Unit next = u;
          ++next.attempt;
          again_of_group.push_back(next);
        }
      }
      std::error_code ec;  // the group's resume state is no longer needed: its units are saved
      std::filesystem::remove(group_state_path(config.out, group), ec);
      state.publish_complete(names, result);
      if (!again_of_group.empty()) again.push_back(std::move(again_of_group));
    }
    progress.finish();
    groups = std::move(again);
  }
  return work;
}

}  // namespace lpld::recover
