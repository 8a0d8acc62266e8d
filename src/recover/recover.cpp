#include "recover/recover.h"

#include <filesystem>
#include <map>
#include <numeric>
#include <set>
#include <string_view>

#include "core/clock.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/lock.h"
#include "core/runtime.h"
#include "models/checkpoint.h"
#include "recover/class_folders.h"
#include "recover/optimize.h"
#include "recover/stall.h"

namespace lpld::recover {
namespace fs = std::filesystem;
namespace {
constexpr int kImagesFormatVersion = 1;

// "BEGIN:END" -> [first, last) within [0, C); empty: every class.
std::pair<int64_t, int64_t> class_range(const std::string& spec, int64_t C) {
  if (spec.empty()) return {0, C};
  int64_t first = 0, last = 0;
  const auto colon = spec.find(':');
  try {
    check_arg(colon != std::string::npos, "--classes", "expected BEGIN:END");
    first = std::stoll(spec.substr(0, colon));
    last = std::stoll(spec.substr(colon + 1));
  } catch (const std::logic_error&) {
    throw std::invalid_argument("--classes: expected BEGIN:END, got '" + spec + "'");
  }
  check_arg(0 <= first && first < last && last <= C, "--classes",
            "'" + spec + "' is not a range within 0:" + std::to_string(C));
  return {first, last};
}

// The folder is bound to one config and teacher (recover.json): another one is an error,
// not a mix. Returns the identity.
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

json unit_record(const Unit& u, const UnitResult& r, bool class_mode) {
  json j = r.to_json();
  j[class_mode ? "chunk" : "batch"] = u.chunk;
  if (!class_mode) j["classes"] = {u.first, u.first + u.count};  // [first, end)
  return j;
}

// Units done (reloaded or optimized) and the classes still to publish.
class RunState {
 public:
  // `stage` false: a rank of a distributed run keeps only unit files; rank 0 stages them all.
  RunState(const RecoverConfig& config, const ClassFolders& folders, int64_t C,
           std::vector<int64_t> pending, bool stage = true)
      : config_(config), folders_(folders), C_(C), pending_(std::move(pending)), stage_(stage) {
    class_mode_ = config.class_wise();
    bs_ = unit_batch(config, C);
  }
  const std::vector<int64_t>& pending() const { return pending_; }
  const std::map<int64_t, std::pair<Unit, UnitResult>>& done() const { return done_; }

  // Stages a finished unit's PNGs and keeps only its record.
  void add(const Unit& u, UnitResult r) {
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

  // Publishes every pending class whose units are all done.
  void publish_complete(const std::vector<std::string>& names, RecoverResult& result) {
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

 private:
  // Mixed mode: a unit's losses are its batch's, shared by its classes; its seconds and
  // correct count are split evenly over them (per class approximate, overall exact).
  ClassRecord class_record(int64_t c, const std::vector<int64_t>& ids) const {
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

  const RecoverConfig& config_;
  const ClassFolders& folders_;
  int64_t C_, bs_ = 0;
  bool class_mode_ = true;
  std::vector<int64_t> pending_;
  bool stage_ = true;
  std::map<int64_t, std::pair<Unit, UnitResult>> done_;
};

// The groups of one whole run (every class of the teacher, at this pack). Every run optimizes
// whole groups of this list: a split (--classes), a resumed run and each rank of a distributed
// run, so a unit always sees the forward batch it sees in one uninterrupted run. Units do not
// interact (recover/optimize.h), but a batch's make-up changes float summation order, which
// thousands of iterations amplify into other PNGs.
std::vector<std::vector<Unit>> whole_run_groups(const RecoverConfig& config, int64_t C,
                                                int64_t pack) {
  std::vector<int64_t> every(static_cast<size_t>(C));
  std::iota(every.begin(), every.end(), 0);
  return make_groups(plan_units(config, C, every), pack);
}

// Optimizes `groups` round by round; a unit that stalls (stall.h) is run again from fresh
// streams (attempt + 1) in the next round, beside the units of its group that stalled too
// (a function of the group alone, so splits agree on restarts as well), up to
// config.stall_restarts times; a unit that stalls in every attempt keeps its best attempt
// (lowest final loss) and is recorded as unconverged. Units not `wanted` (outside this run's
// classes, or already saved) are optimized only to keep their groups whole: they are neither
// saved nor reported.
void optimize_units(const GroupContext& ctx, std::vector<std::vector<Unit>> groups,
                    const std::set<int64_t>& wanted, RunState& state,
                    const std::vector<std::string>& names, RecoverResult& result,
                    Progress& progress, int64_t& unit_iterations, int64_t& image_iterations) {
  const auto& config = *ctx.config;
  const StallRule rule{config.r_bn, config.stall_loss, config.stall_accuracy};
  std::map<int64_t, UnitResult> best;  // stalled attempts so far, by unit id
  int64_t work_done = 0;
  for (int round = 0; !groups.empty(); ++round) {
    int64_t units = 0;
    for (const auto& g : groups) units += static_cast<int64_t>(g.size());
    progress.start(round == 0 ? "recover " + choice_name(config.mode) : "recover restarts",
                   units * config.iterations, "it");
    work_done = 0;
    std::vector<std::vector<Unit>> again;
    for (const auto& group : groups) {
      auto results = optimize_group(ctx, group, progress, work_done);
      std::vector<Unit> again_of_group;  // its stalled units, restarted together
      for (size_t k = 0; k < group.size(); ++k) {
        const Unit& u = group[k];
        UnitResult r = std::move(results[k]);
        unit_iterations += config.iterations;
        image_iterations += u.count * config.iterations;
        r.converged =
            config.iterations < kMinStallIterations || !stalled(r.trace, r.correct, u.count, rule);
        const bool restart = !r.converged && u.attempt < config.stall_restarts;
        if (restart) {
          Unit next = u;
          ++next.attempt;
          again_of_group.push_back(next);
        }
        if (!wanted.count(u.id)) {
          ++result.units_outside;
          continue;
        }
        ++result.units_optimized;
        auto prior = best.find(u.id);
        if (prior != best.end()) r.seconds += prior->second.seconds;
        if (!r.converged) {
          const auto loss = [&](const UnitResult& x) { return x.ce + config.r_bn * x.bn; };
          if (prior != best.end() && loss(prior->second) <= loss(r)) {
            prior->second.seconds = r.seconds, prior->second.attempts = r.attempts;
            r = prior->second;
          }
          if (restart) {
            progress.warning(fmt::format(
                "recover: {} stalled (ce {:.3f}, bn {:.2f} from {:.2f}, {:.0f} of its images "
                "classified right); restart {} of {}",
                u.label >= 0 ? "class " + names[static_cast<size_t>(u.label)]
                             : fmt::format("batch {} of classes {}..{}", u.chunk, u.first,
                                           u.first + u.count - 1),
                r.ce, r.bn, r.bn_start, r.correct, u.attempt + 1, config.stall_restarts));
            best[u.id] = std::move(r);
            continue;
          }
        }
        result.restarts += r.attempts - 1;
        best.erase(u.id);
        save_unit(unit_path(config.out, u.id), r);
        state.add(u, std::move(r));
      }
      std::error_code ec;  // the group's resume state is no longer needed: its units are saved
      std::filesystem::remove(group_state_path(config.out, group), ec);
      state.publish_complete(names, result);
      if (!again_of_group.empty()) again.push_back(std::move(again_of_group));
    }
    progress.finish();
    groups = std::move(again);
  }
}

// Locks what this process will make, so processes sharing the folder never make the same
// class: class mode takes each pending class whose lock is free (a class another process
// holds is left to it, and named); mixed mode, whose batches hold every class, takes the
// folder or fails at once naming the holder. `pending` keeps the classes taken.
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

// Removes the unit files of this run's classes (also those an interrupted run completed
// but did not clean up) once every class they hold is complete: processes sharing the folder
// (--classes) keep theirs, and a mixed batch cut by the range stays for the range that holds
// its other classes.
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

// Fills the result's per-class records and teacher top-1, and writes manifest.json over
// every complete class in the folder (several processes may share it).
void write_manifest(const RecoverConfig& config, const models::ModelMeta& meta,
                    const json& identity, const ClassFolders& folders, const RunState& state,
                    int64_t first, int64_t last, RecoverResult& result, Progress& progress) {
  const bool class_mode = config.class_wise();
  const int64_t C = meta.num_classes;
  json classes = json::array(), unconverged = json::array();
  double correct_sum = 0;
  int64_t counted = 0, restarts = 0;
  for (int64_t c = 0; c < C; ++c) {
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
  json manifest = identity;
  if (!class_mode) {  // a mixed batch belongs to every class: its records live here
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
  if (manifest["complete"].get<bool>()) {  // nothing can still be under way in the folder
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
}  // namespace

void RecoverConfig::declare(OptionSet& o) {
  o.add("recipe", &recipe, "auto (from the teacher's resolution), small, tiny or imagenet1k")
      .add("teacher", &teacher, "teacher checkpoint from squeeze")
      .add("out", &out, "output folder (ImageFolder of PNGs)")
      .add("mode", &mode, "class: LPLD, one class per batch, class BN stats; mixed: SRe2L")
      .add("ipc", &ipc, "images per class")
      .add("iterations", &iterations, "optimization steps per batch")
      .add("lr", &lr, "Adam learning rate (cosine to 0)")
      .add("r_bn", &r_bn, "weight of the BN-matching loss")
      .add("first_bn_multiplier", &first_bn_multiplier, "extra weight of the first BN layer")
      .add("jitter", &jitter, "circular roll offset range (pixels)")
      .add("jitter_signed", &jitter_signed,
           "roll offsets in [-jitter, jitter] instead of [0, jitter]")
      .add("batch_size", &batch_size,
           "class mode: images per class batch (0: ipc); mixed mode: classes per batch, one "
           "image each (0: up to 100, SRe2L's)")
      .add("per_image_augment", &per_image_augment, "a crop/flip per image instead of per batch")
      .add("crop_scale_min", &crop_scale_min, "RandomResizedCrop minimum area fraction")
      .add("tv_l2", &tv_l2, "total-variation L2 prior weight")
      .add("l2", &l2, "image L2 prior weight")
      .add("seed", &seed, "random seed")
      .add("classes", &classes, "BEGIN:END: only these classes (split a run over processes)")
      .add("pack", &pack, "units per forward pass (0: automatic)")
      .add("checkpoint_every", &checkpoint_every,
           "iterations between the resume states of a group (0: never)")
      .add("stall_restarts", &stall_restarts,
           "restarts of a unit that stalls, from fresh streams (0: never restart)")
      .add("stall_loss", &stall_loss,
           "stall rule: final-window loss (CE + r_bn BN) above this x the first window's")
      .add("stall_accuracy", &stall_accuracy,
           "stall rule: fewer of a unit's saved images classified right than this fraction")
      .add("device", &device, "cpu, cuda or cuda:N")
      .add("amp", &amp, "mixed precision: off, bf16 or fp16 (autocast; fp16 with loss scaling)")
      .add("channels_last", &channels_last, "channels-last (NHWC) teacher and views");
}

void RecoverConfig::apply_recipe(const std::string& name) {
  const RecoverConfig small;
  iterations = small.iterations, lr = small.lr, r_bn = small.r_bn, jitter = small.jitter;
  jitter_signed = small.jitter_signed, batch_size = small.batch_size;
  per_image_augment = small.per_image_augment;
  if (name == "imagenet1k") {  // class mode: batch = IPC; mixed: 100 classes (batch_size 0)
    iterations = 4000, lr = 0.25, r_bn = 0.01, jitter = 32, jitter_signed = false;
  } else if (name == "tiny") {
    iterations = 4000, lr = 0.1, r_bn = 0.05, jitter = 4, jitter_signed = true, batch_size = 100;
  } else if (name != "small" && name != "auto") {
    throw std::invalid_argument("--recipe: unknown recipe '" + name +
                                "' (use auto, imagenet1k, tiny or small)");
  }
  recipe = name;
}

void RecoverConfig::validate() const {
  check_arg(!teacher.empty(), "--teacher", "a teacher checkpoint is required");
  check_arg(!out.empty(), "--out", "an output folder is required");
  check_arg(ipc >= 1, "--ipc", "must be >= 1");
  check_arg(iterations >= 1, "--iterations", "must be >= 1");
  check_arg(lr > 0, "--lr", "must be > 0");
  check_arg(r_bn >= 0, "--r-bn", "must be >= 0");
  check_arg(first_bn_multiplier >= 0, "--first-bn-multiplier", "must be >= 0");
  check_arg(jitter >= 0, "--jitter", "must be >= 0");
  check_arg(batch_size >= 0, "--batch-size", "must be >= 0");
  check_arg(crop_scale_min > 0 && crop_scale_min <= 1, "--crop-scale-min", "must be in (0, 1]");
  check_arg(tv_l2 >= 0 && l2 >= 0, "--tv-l2/--l2", "must be >= 0");
  check_arg(pack >= 0, "--pack", "must be >= 0");
  check_arg(checkpoint_every >= 0, "--checkpoint-every", "must be >= 0");
  check_arg(stall_restarts >= 0, "--stall-restarts", "must be >= 0");
  check_arg(stall_loss > 0, "--stall-loss", "must be > 0");
  check_arg(stall_accuracy >= 0 && stall_accuracy <= 1, "--stall-accuracy", "must be in [0, 1]");
}

json RecoverConfig::identity() const {
  json j = config_json(*this);
  // (the recipe's name too: its values are what count, and "auto" names none)
  for (const char* k :
       {"recipe", "teacher", "out", "classes", "pack", "device", "checkpoint_every"})
    j.erase(k);
  // The TV prior changed from 2 to DeepInversion's 4 neighbour differences: folders made
  // with the old one (tv_l2 > 0) must not be resumed with the new one.
  if (tv_l2 > 0) j["tv_prior"] = "4-neighbour";
  return j;
}

json ClassRecord::to_json() const {
  return {{"label", label},
          {"ce", ce},
          {"bn", bn},
          {"ce_start", ce_start},
          {"bn_start", bn_start},
          {"seconds", seconds},
          {"teacher_accuracy", teacher_accuracy},
          {"restarts", restarts},
          {"converged", converged},
          {"units", units},
          {"skipped", skipped}};
}

ClassRecord ClassRecord::from_json(const json& j) {
  ClassRecord r;
  r.label = j.at("label"), r.ce = j.at("ce"), r.bn = j.at("bn");
  r.ce_start = j.at("ce_start"), r.bn_start = j.at("bn_start"), r.seconds = j.at("seconds");
  r.teacher_accuracy = j.at("teacher_accuracy");
  r.restarts = j.value("restarts", int64_t{0});
  r.converged = j.value("converged", true);
  r.units = j.value("units", json::array());
  r.skipped = j.value("skipped", false);
  return r;
}

const std::vector<Choice<RecoverMode>>& choices(RecoverMode) {
  static const std::vector<Choice<RecoverMode>> table = {{RecoverMode::class_wise, "class"},
                                                         {RecoverMode::mixed, "mixed"}};
  return table;
}

json RecoverResult::to_json() const {
  json cls = json::array();
  for (const auto& c : classes) cls.push_back(c.to_json());
  return {{"recipe", recipe},
          {"seconds", seconds},
          {"setup_seconds", setup_seconds},
          {"iterations_per_second", iterations_per_second},
          {"image_iterations_per_second", image_iterations_per_second},
          {"teacher_top1", teacher_top1},
          {"images", images},
          {"image_bytes", image_bytes},
          {"pack", pack},
          {"restarts", restarts},
          {"units_optimized", units_optimized},
          {"units_outside", units_outside},
          {"unconverged", unconverged},
          {"classes", cls}};
}

namespace {

RecoverResult recover_part(const RecoverConfig& requested, Progress& progress, Dist* dist) {
  requested.validate();
  const auto start = Clock::now();
  const torch::Device device = parse_device(requested.device);
  auto ck = models::load_checkpoint(requested.teacher, device);  // eval mode
  std::string note;
  const RecoverConfig config = resolve_recipe(requested, ck.meta.image_size, "recover", &note);
  if (!note.empty()) progress.message(note);
  for (auto& p : ck.model->parameters()) p.set_requires_grad(false);
  const bool class_mode = config.class_wise();
  check_arg(!class_mode || !ck.class_stats.empty(), "--teacher",
            config.teacher + " has no class-wise BN statistics (run squeeze with class stats)");
  const int64_t C = ck.meta.num_classes;
  const auto [first, last] = class_range(config.classes, C);
  // A distributed run's rank 0 binds the folder first; the others then check it.
  if (dist && dist->rank() > 0) dist->barrier("recover: waiting for rank 0 to bind " + config.out);
  const json identity = bind_folder(config, hash_file(config.teacher));
  if (dist && dist->rank() == 0) dist->barrier("recover: waiting for the other ranks to start");
  const auto& names = ck.meta.class_names;
  ClassFolders folders(config.out, names);

  // What remains: a class whose folder exists is complete; finished units of an
  // interrupted run are kept in .units/ and restaged (their PNGs are a function of the
  // seed and config, so they come out as they were). A rank of a distributed run takes no
  // locks and stages nothing: it leaves unit files, which rank 0 then publishes.
  std::vector<int64_t> pending;
  for (int64_t c = first; c < last; ++c)
    if (!folders.complete(c)) pending.push_back(c);
  std::vector<std::unique_ptr<FileLock>> locks;
  if (!dist) {
    locks = claim_classes(config, folders, pending, progress);
    for (int64_t c : pending) folders.clear_staging(c);  // e.g. a killed write's temp file
  }
  RunState state(config, folders, C, pending, /*stage=*/dist == nullptr);
  std::set<int64_t> todo;  // ids of the units this run still has to make
  for (const auto& u : plan_units(config, C, pending)) {
    if (!file_exists(unit_path(config.out, u.id)))
      todo.insert(u.id);
    else if (!dist)
      state.add(u, load_unit(unit_path(config.out, u.id)));
  }
  // Every rank plans from the same files: none may write a unit before all have planned.
  if (dist) dist->barrier("recover: waiting for the other ranks to plan");

  // Packing: on CPU small batches are efficient per image, so pack to ~32 images; on a
  // GPU fill up to ~256 (bench/recover measures this).
  const int64_t bs = unit_batch(config, C);
  const int64_t pack =
      config.pack > 0 ? config.pack : std::max<int64_t>(1, (device.is_cuda() ? 256 : 32) / bs);
  // The whole run's groups that hold a unit to make; a distributed run deals them out over
  // the ranks.
  std::vector<std::vector<Unit>> groups;
  int64_t needed = 0;  // groups with a unit to make so far; the n-th goes to rank n mod N
  for (auto& g : whole_run_groups(config, C, pack)) {
    if (std::none_of(g.begin(), g.end(), [&](const Unit& u) { return todo.count(u.id) > 0; }))
      continue;
    if (!dist || needed % dist->world_size() == dist->rank()) groups.push_back(std::move(g));
    ++needed;
  }
  RecoverResult result;
  result.recipe = config.recipe;
  result.pack = pack;
  const auto optimize_start = Clock::now();
  result.setup_seconds = seconds_since(start);
  int64_t unit_iterations = 0, image_iterations = 0;
  const GroupContext ctx = make_group_context(ck, config, device);
  optimize_units(ctx, std::move(groups), todo, state, names, result, progress, unit_iterations,
                 image_iterations);
  const double opt_seconds = seconds_since(optimize_start);
  result.iterations_per_second = opt_seconds > 0 ? unit_iterations / opt_seconds : 0;
  result.image_iterations_per_second = opt_seconds > 0 ? image_iterations / opt_seconds : 0;
  if (dist) {
    result.seconds = seconds_since(start);
    return result;
  }
  state.publish_complete(names, result);  // units an interrupted run finished, none left to run
  remove_unit_files(config, folders, first, last);
  write_manifest(config, ck.meta, identity, folders, state, first, last, result, progress);
  result.seconds = seconds_since(start);
  return result;
}

// A distributed run (WORLD_SIZE > 1): every rank optimizes its share of the one-process
// run's groups into unit files; rank 0 then publishes the folder from them, exactly as it
// resumes an interrupted run. A rank that fails records why, and the others stop with it.
RecoverResult recover_distributed(const RecoverConfig& config, Progress& progress,
                                  const DistEnv& env) {
  check_arg(config.classes.empty(), "--classes",
            "a distributed run (WORLD_SIZE > 1) divides the classes itself; leave it out");
  Dist dist(env, resolve_device(config.device, env));
  RecoverResult result;
  try {
    result = recover_part(config, progress, &dist);
  } catch (const std::exception& e) {
    dist.report_failure(e.what());
    throw;
  }
  dist.barrier("recover: waiting for the other ranks' units");
  if (dist.rank() == 0) {
    try {
      RecoverResult mine = result;
      result = recover_part(config, progress, nullptr);
      result.iterations_per_second = mine.iterations_per_second;
      result.image_iterations_per_second = mine.image_iterations_per_second;
      result.units_optimized += mine.units_optimized;
      result.seconds += mine.seconds;
    } catch (const std::exception& e) {
      dist.report_failure(e.what());
      throw;
    }
  }
  dist.barrier("recover: waiting for rank 0 to publish " + config.out);
  return result;
}

}  // namespace

RecoverResult recover(const RecoverConfig& config, Progress& progress) {
  const DistEnv env = DistEnv::from_environment();
  if (env.distributed()) return recover_distributed(config, progress, env);
  return recover_part(config, progress, nullptr);
}

}  // namespace lpld::recover
