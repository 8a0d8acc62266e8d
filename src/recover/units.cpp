#include "recover/units.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/safetensors.h"
#include "recover/recover.h"

namespace lpld::recover {

json UnitResult::to_json() const {
  json t = json::array();
  for (const auto& p : trace) t.push_back({p.it, p.ce, p.bn});
  return {
      {"ce", ce},           {"bn", bn},           {"ce_start", ce_start}, {"bn_start", bn_start},
      {"seconds", seconds}, {"correct", correct}, {"attempts", attempts}, {"converged", converged},
      {"trace", t}};
}

std::string describe(const Unit& u) {
  if (u.label >= 0) return fmt::format("class {}, chunk {}", u.label, u.chunk);
  return fmt::format("batch {} of classes {}..{}", u.chunk, u.first, u.first + u.count - 1);
}

int64_t unit_batch(const RecoverConfig& c, int64_t num_classes) {
  if (!c.class_wise())
    return std::min(c.batch_size > 0 ? c.batch_size : 100, num_classes);  // SRe2L: 100
  return c.batch_size > 0 ? std::min(c.batch_size, c.ipc) : c.ipc;
}

int64_t units_per_class(const RecoverConfig& c, int64_t num_classes) {
  const int64_t bs = unit_batch(c, num_classes);
  return c.class_wise() ? (c.ipc + bs - 1) / bs : c.ipc;
}

int64_t class_blocks(const RecoverConfig& c, int64_t num_classes) {
  if (c.class_wise()) return 1;
  const int64_t bs = unit_batch(c, num_classes);
  return (num_classes + bs - 1) / bs;
}

std::vector<int64_t> unit_ids_of_class(const RecoverConfig& config, int64_t C, int64_t c) {
  const int64_t chunks = units_per_class(config, C);
  std::vector<int64_t> ids;
  if (config.class_wise()) {
    for (int64_t j = 0; j < chunks; ++j) ids.push_back(c * chunks + j);
  } else {
    const int64_t blocks = class_blocks(config, C), block = c / unit_batch(config, C);
    for (int64_t j = 0; j < config.ipc; ++j) ids.push_back(j * blocks + block);
  }
  return ids;
}

std::vector<Unit> plan_units(const RecoverConfig& config, int64_t C,
                             const std::vector<int64_t>& classes) {
  std::vector<Unit> units;
  const int64_t bs = unit_batch(config, C);
  if (config.class_wise()) {
    const int64_t chunks = units_per_class(config, C);
    for (int64_t c : classes)
      for (int64_t j = 0; j < chunks; ++j)
        units.push_back({c * chunks + j, c, j, c, std::min(bs, config.ipc - j * bs)});
    return units;
  }
  // Mixed: the blocks that `classes` touch, image index by image index (an IPC round of
  // blocks after another, as SRe2L makes them). With one block a unit's id is its index j.
  std::vector<int64_t> blocks;
  for (int64_t c : classes)
    if (blocks.empty() || blocks.back() != c / bs) blocks.push_back(c / bs);
  const int64_t nb = class_blocks(config, C);
  for (int64_t j = 0; j < config.ipc; ++j)
    for (int64_t b : blocks) units.push_back({j * nb + b, -1, j, b * bs, std::min(bs, C - b * bs)});
  return units;
}

std::string unit_path(const std::string& out, int64_t id) {
  return out + "/.units/u" + std::to_string(id) + ".safetensors";
}

void save_unit(const std::string& path, const UnitResult& r) {
  TensorFile f;
  f.tensors["images"] = r.images;
  f.metadata["result"] = r.to_json().dump();
  save_safetensors(path, f);
}

UnitResult load_unit(const std::string& path) {
  auto f = load_safetensors(path);
  check_file(f.tensors.count("images") && f.metadata.count("result"), path, "incomplete unit file");
  UnitResult r;
  r.images = f.tensors["images"];
  try {
    const json j = json::parse(f.metadata["result"]);
    r.ce = j.at("ce"), r.bn = j.at("bn"), r.ce_start = j.at("ce_start");
    r.bn_start = j.at("bn_start"), r.seconds = j.at("seconds"), r.correct = j.at("correct");
    r.attempts = j.at("attempts"), r.converged = j.at("converged");
    for (const auto& p : j.at("trace")) r.trace.push_back({p.at(0), p.at(1), p.at(2)});
  } catch (const json::exception& e) {
    fail_file(path, std::string("bad unit record: ") + e.what());
  }
  return r;
}

namespace {
// Groups of equal-sized units, at most `pack` units per pass (only a class's last chunk can
// be smaller; it goes alone).
std::vector<std::vector<Unit>> make_groups(const std::vector<Unit>& units, int64_t pack) {
  std::vector<std::vector<Unit>> groups;
  for (size_t p0 = 0; p0 < units.size(); p0 += static_cast<size_t>(pack)) {
    const size_t p1 = std::min(units.size(), p0 + static_cast<size_t>(pack));
    std::vector<std::vector<Unit>> by_size;
    for (size_t i = p0; i < p1; ++i) {
      auto it = std::find_if(by_size.begin(), by_size.end(),
                             [&](const auto& g) { return g.front().count == units[i].count; });
      if (it == by_size.end())
        by_size.push_back({units[i]});
      else
        it->push_back(units[i]);
    }
    for (auto& g : by_size) groups.push_back(std::move(g));
  }
  return groups;
}
}  // namespace

std::vector<std::vector<Unit>> whole_run_groups(const RecoverConfig& config, int64_t C,
                                                int64_t pack) {
  std::vector<int64_t> every(static_cast<size_t>(C));
  std::iota(every.begin(), every.end(), 0);
  return make_groups(plan_units(config, C, every), pack);
}

}  // namespace lpld::recover
