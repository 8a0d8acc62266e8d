#include "recover/folder.h"

#include <filesystem>
#include <map>
#include <numeric>
#include <set>
#include <string_view>

#include "core/error.h"

namespace lpld::recover {
namespace fs = std::filesystem;
namespace {
constexpr int kImagesFormatVersion = 1;

// Mixed mode: the batch records of manifest.json, those a run made before (another
// --classes range, or a complete folder run again) updated by this run's. This run's
// teacher top-1 is exact over the images of its batches (class.json splits it evenly).
json mixed_batches(const std::string& path, const RunState& state, RecoverResult& result) {
  std::map<std::pair<int64_t, int64_t>, json> batches;  // (image index, first class)
  if (file_exists(path)) try {
      for (const auto& b : read_json(path).value("batches", json::array())) {
        check_file(b.at("attempts").is_number_integer() && b.at("converged").is_boolean(), path,
                   "a batch record without attempts or converged");
        batches[{b.at("batch").get<int64_t>(), b.at("classes").at(0).get<int64_t>()}] = b;
      }
    } catch (const json::exception& e) {
      fail_file(path, std::string("bad batch record: ") + e.what());
    }
  double correct = 0, images = 0;
  for (const auto& [id, ur] : state.done()) {
    batches[{ur.first.chunk, ur.first.first}] = unit_record(ur.first, ur.second, false);
    correct += ur.second.correct;
    images += static_cast<double>(ur.first.count);
  }
  if (images > 0) result.teacher_top1 = 100.0 * correct / images;
  json out = json::array();
  for (auto& [key, b] : batches) out.push_back(std::move(b));
  return out;
}

// Records for manifest.json of every complete class; adds to the result the records of the
// classes [first, last) this run did not make (skipped), and sets its teacher top-1 over them.
json class_records(const ClassFolders& folders, bool class_mode, int64_t first, int64_t last,
                   RecoverResult& result, int64_t& restarts, json& unconverged) {
  json classes = json::array();
  double correct_sum = 0;
  int64_t counted = 0;
  for (int64_t c = 0; c < folders.num_classes(); ++c) {
    if (!folders.complete(c)) continue;
    json cj = read_json(folders.dir(c) + "/class.json");
    restarts += class_mode ? cj.value("restarts", int64_t{0}) : 0;
    for (const auto& u : cj.value("units", json::array()))
      if (!u.value("converged", true)) unconverged.push_back({{"class", c}, {"chunk", u["chunk"]}});
    if (c >= first && c < last) {
      correct_sum += cj["teacher_accuracy"].get<double>();
      ++counted;
      if (std::none_of(result.classes.begin(), result.classes.end(),
                       [&](const ClassRecord& r) { return r.label == c; })) {
        ClassRecord rec = ClassRecord::from_json(cj);
        rec.skipped = true;
        result.classes.push_back(rec);
      }
    }
    cj.erase("units");
    cj.erase("images");
    cj["dir"] = folders.name(c);
    classes.push_back(cj);
  }
  result.teacher_top1 = counted > 0 ? correct_sum / counted : 0;
  return classes;
}
}  // namespace

json bind_folder(const RecoverConfig& config, const std::string& teacher_hash) {
  make_dirs(config.out);
  json identity = {{"format", "lpld-images"},
                   {"format_version", kImagesFormatVersion},
                   {"recover", config.identity()},
                   {"teacher_hash", teacher_hash}};
  const std::string path = config.out + "/recover.json";
  if (!file_exists(path)) {
    write_json(path, identity);
  } else if (read_json(path) != identity) {
    throw std::invalid_argument("--out: " + config.out +
                                " holds images made with another config or teacher "
                                "(recover.json differs); use a new folder");
  }
  return identity;
}

std::vector<std::unique_ptr<FileLock>> claim_classes(const RecoverConfig& config,
                                                     const ClassFolders& folders,
                                                     std::vector<int64_t>& pending,
                                                     Progress& progress) {
  std::vector<std::unique_ptr<FileLock>> locks;
  const std::string dir = config.out + "/.locks/";
  // Mixed mode claims blocks of classes (a batch holds one image of each class of its block).
  const int64_t bs = config.class_wise() ? 1 : unit_batch(config, folders.num_classes());
  std::vector<int64_t> mine;
  std::string taken;
  int64_t held_block = -1;
  for (int64_t c : pending) {
    const std::string name =
        config.class_wise() ? folders.name(c) : fmt::format("mixed-block-{}", c / bs);
    if (!config.class_wise() && c / bs == held_block) {
      mine.push_back(c);
      continue;
    }
    auto lock = FileLock::try_acquire(dir + name + ".lock");
    if (!lock) {
      taken += fmt::format("{}{} ({})", taken.empty() ? "" : ", ", name,
                           FileLock::holder(dir + name + ".lock"));
    } else if (!config.class_wise() || !folders.complete(c)) {  // finished meanwhile?
      locks.push_back(std::move(lock));
      mine.push_back(c);
      held_block = c / bs;
    }
  }
  if (!taken.empty())
    progress.warning("recover: being made by another process, left to it: " + taken);
  pending = mine;
  return locks;
}

void remove_unit_files(const RecoverConfig& config, const ClassFolders& folders, int64_t first,
                       int64_t last) {
  const int64_t C = folders.num_classes();
  std::vector<int64_t> range(static_cast<size_t>(last - first));
  std::iota(range.begin(), range.end(), first);
  std::set<std::string> mine;  // "u<id>.safetensors", which also prefixes its temp files
  for (const auto& u : plan_units(config, C, range)) {
    const int64_t end = config.class_wise() ? u.first + 1 : u.first + u.count;  // its classes
    bool complete = true;
    for (int64_t c = u.first; c < end; ++c) complete = complete && folders.complete(c);
    if (complete) mine.insert(fs::path(unit_path(config.out, u.id)).filename().string());
  }
  constexpr std::string_view kExt = ".safetensors";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(config.out + "/.units", ec)) {
    const std::string name = e.path().filename().string();
    const auto dot = name.find(kExt);
    if (dot != std::string::npos && mine.count(name.substr(0, dot + kExt.size())))
      fs::remove(e.path(), ec);
  }
}

void write_manifest(const RecoverConfig& config, const models::ModelMeta& meta,
                    const json& identity, const ClassFolders& folders, const RunState& state,
                    int64_t first, int64_t last, RecoverResult& result, Progress& progress) {
  const int64_t C = meta.num_classes;
  int64_t restarts = 0;
  json unconverged = json::array();
  const json classes =
      class_records(folders, config.class_wise(), first, last, result, restarts, unconverged);
  json manifest = identity;
  if (!config.class_wise()) {  // a mixed batch belongs to every class: its records live here
    manifest["batches"] = mixed_batches(config.out + "/manifest.json", state, result);
    restarts = 0, unconverged = json::array();
    for (const auto& b : manifest["batches"]) {
      restarts += b.at("attempts").get<int64_t>() - 1;
      if (!b.at("converged").get<bool>()) unconverged.push_back({{"batch", b.at("batch")}});
    }
  }
  std::tie(result.images, result.image_bytes) = folders.count_images();
  manifest["num_classes"] = C;
  manifest["image_size"] = meta.image_size;
  manifest["channels"] = meta.channels;
  manifest["class_names"] = meta.class_names;
  manifest["mean"] = meta.norm.mean;
  manifest["std"] = meta.norm.std;
  manifest["classes"] = classes;
  manifest["restarts"] = restarts;
  manifest["unconverged"] = unconverged;
  manifest["complete"] = static_cast<int64_t>(classes.size()) == C;
  write_json(config.out + "/manifest.json", manifest);
  // Every class done: no process can still need the unit folder (removing it earlier could
  // race with another --classes process creating a unit file in it).
  if (manifest["complete"].get<bool>()) {
    std::error_code ec;
    fs::remove_all(config.out + "/.units", ec);
    fs::remove_all(config.out + "/.locks", ec);
  }
  std::sort(result.classes.begin(), result.classes.end(),
            [](const ClassRecord& a, const ClassRecord& b) { return a.label < b.label; });
  result.unconverged = unconverged;
  for (const auto& u : unconverged)
    progress.warning("recover: did not converge in any attempt: " + u.dump());
}

}  // namespace lpld::recover
