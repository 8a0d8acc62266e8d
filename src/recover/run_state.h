// What a recover run has done so far: the units finished (optimized or reloaded from .units/)
// and the classes still to publish. A finished unit's PNGs are staged at once and only its
// record is kept, so memory does not grow with the set (class_folders.h).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "recover/class_folders.h"
#include "recover/recover.h"
#include "recover/units.h"

namespace lpld::recover {

// A unit's record in class.json (class mode) or manifest.json's batches (mixed mode).
json unit_record(const Unit& u, const UnitResult& r, bool class_mode);

class RunState {
 public:
  // `stage` false: a rank of a distributed run keeps only unit files; rank 0 stages them all.
  RunState(const RecoverConfig& config, const ClassFolders& folders, int64_t num_classes,
           std::vector<int64_t> pending, bool stage = true);
  const std::vector<int64_t>& pending() const { return pending_; }
  const std::map<int64_t, std::pair<Unit, UnitResult>>& done() const { return done_; }

  // Stages a finished unit's PNGs and keeps only its record.
  void add(const Unit& u, UnitResult r);
  // Publishes every pending class whose units are all done.
  void publish_complete(const std::vector<std::string>& names, RecoverResult& result);

 private:
  ClassRecord class_record(int64_t c, const std::vector<int64_t>& ids) const;

  const RecoverConfig& config_;
  const ClassFolders& folders_;
  int64_t C_, bs_ = 0;
  bool class_mode_ = true;
  std::vector<int64_t> pending_;
  bool stage_ = true;
  std::map<int64_t, std::pair<Unit, UnitResult>> done_;
};

}  // namespace lpld::recover
