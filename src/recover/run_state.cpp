#include "recover/run_state.h"

#include <algorithm>

namespace lpld::recover {

json unit_record(const Unit& u, const UnitResult& r, bool class_mode) {
  json j = r.to_json();
  j[class_mode ? "chunk" : "batch"] = u.chunk;
  if (!class_mode) j["classes"] = {u.first, u.first + u.count};  // [first, end)
  return j;
}

RunState::RunState(const RecoverConfig& config, const ClassFolders& folders, int64_t C,
                   std::vector<int64_t> pending, bool stage)
    : config_(config), folders_(folders), C_(C), pending_(std::move(pending)), stage_(stage) {
  class_mode_ = config.class_wise();
  bs_ = unit_batch(config, C);
}

void RunState::add(const Unit& u, UnitResult r) {
  if (!stage_) {
  } else if (class_mode_) {
    folders_.stage(u.label, r.images, u.chunk * bs_);
  } else {  // mixed: image k of unit (j, block) is class first + k's image j
    for (int64_t k = 0; k < u.count; ++k)
      if (std::binary_search(pending_.begin(), pending_.end(), u.first + k))
        folders_.stage(u.first + k, r.images.narrow(0, k, 1), u.chunk);
  }
  r.images = torch::Tensor();
  done_[u.id] = {u, std::move(r)};
}

void RunState::publish_complete(const std::vector<std::string>& names, RecoverResult& result) {
  if (!stage_) return;
  for (auto it = pending_.begin(); it != pending_.end();) {
    const std::vector<int64_t> ids = unit_ids_of_class(config_, C_, *it);
    if (!std::all_of(ids.begin(), ids.end(), [&](int64_t id) { return done_.count(id); })) {
      ++it;
      continue;
    }
    ClassRecord rec = class_record(*it, ids);
    json class_json = rec.to_json();
    class_json.erase("skipped");
    class_json["name"] = names[static_cast<size_t>(*it)];
    folders_.publish(*it, class_json);
    result.classes.push_back(rec);
    it = pending_.erase(it);
  }
}

// Mixed mode: a unit's losses are its batch's, shared by its classes; its seconds and
// correct count are split evenly over them (per class approximate, overall exact).
ClassRecord RunState::class_record(int64_t c, const std::vector<int64_t>& ids) const {
  ClassRecord rec;
  rec.label = c;
  const double n = static_cast<double>(ids.size());
  double correct = 0;
  for (int64_t id : ids) {
    const auto& [u, r] = done_.at(id);
    const double share = class_mode_ ? 1.0 : static_cast<double>(u.count);
    rec.ce += r.ce / n, rec.bn += r.bn / n;
    rec.ce_start += r.ce_start / n, rec.bn_start += r.bn_start / n;
    rec.seconds += r.seconds / share;
    correct += r.correct / share;
    rec.restarts += r.attempts - 1;
    rec.converged = rec.converged && r.converged;
    if (class_mode_) rec.units.push_back(unit_record(u, r, true));
  }
  rec.teacher_accuracy = 100.0 * correct / static_cast<double>(config_.ipc);
  return rec;
}

}  // namespace lpld::recover
