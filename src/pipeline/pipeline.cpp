#include "pipeline/pipeline.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "core/clock.h"
#include "core/error.h"
#include "core/runtime.h"
#include "labels/image_set.h"
#include "labels/label_store.h"
#include "models/checkpoint.h"
#include "pipeline/image_grid.h"
#include "pipeline/stages.h"

namespace lpld::pipeline {
namespace fs = std::filesystem;
namespace {

// A stage option the pipeline sets itself, and from what: given in the stage's section it would
// be overwritten, so it is an error naming it (issue: no silent settings).
struct Owned {
  const char* key;
  const char* from;
};
const std::map<std::string, std::vector<Owned>> kOwned = {
    {"squeeze", {{"out", "DIR"}, {"seed", "seed"}, {"device", "device"}}},
    {"recover",
     {{"teacher", "squeeze"},
      {"out", "DIR"},
      {"mode", "modes"},
      {"ipc", "ipcs"},
      {"seed", "seed"},
      {"device", "device"}}},
    {"relabel",
     {{"teacher", "squeeze"},
      {"images", "recover"},
      {"out", "DIR"},
      {"prune_ratio", "prune_ratios"},
      {"seed", "seed"},
      {"device", "device"}}},
    {"train",
     {{"images", "recover"},
      {"labels", "relabel"},
      {"teacher", "squeeze"},
      {"out", "DIR"},
      {"val", "squeeze.val"},
      {"prune_ratio", "prune_ratios"},
      {"epochs", "relabel.epochs"},
      {"seed", "seeds"},
      {"device", "device"},
      {"batch_size", "relabel.batch_size"},
      {"cutmix", "relabel.cutmix"},
      {"cutmix_alpha", "relabel.cutmix_alpha"},
      {"crop_scale_min", "relabel.crop_scale_min"}}}};

template <typename Config>
void apply_section(const YAML::Node& root, const std::string& key, Config& config,
                   const std::string& path) {
  const YAML::Node node = root[key];
  if (!node) return;
  check_arg(node.IsMap(), path + ": " + key, "expected a map of options");
  for (const Owned& o : kOwned.at(key))
    check_arg(!node[o.key], path + ": " + key + ": " + o.key,
              std::string("set by the pipeline from ") + o.from + "; remove it here");
  apply_yaml_config(config, node, path + ": " + key);
}

std::string ratio_tag(double r) { return fmt::format("r{:g}", r); }
std::string factor(double r) { return r < 0 ? "online" : fmt::format("{:g}x", 1.0 / (1.0 - r)); }

}  // namespace

PipelineConfig load_pipeline_config(const std::string& path) {
  const YAML::Node root = load_yaml_file(path);
  check_arg(root.IsMap(), path, "expected a map at the top level");
  PipelineConfig c;
  OptionSet top;
  top.add("modes", &c.modes, "")
      .add("ipcs", &c.ipcs, "")
      .add("prune_ratios", &c.prune_ratios, "")
      .add("seeds", &c.seeds, "")
      .add("online", &c.online, "")
      .add("order_at_1x", &c.order_at_1x, "")
      .add("seed", &c.seed, "")
      .add("device", &c.device, "");
  // A section for a stage that exists but that the pipeline does not run (its descriptor,
  // pipeline/stages.h) is named as such, not as an unknown key.
  const std::vector<std::string> sections = {"squeeze", "recover", "relabel", "train"};
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>("");
    if (find_stage(key) && std::find(sections.begin(), sections.end(), key) == sections.end())
      throw std::invalid_argument(path + ": " + key + ": the pipeline does not run " + key +
                                  " (its sections: squeeze, recover, relabel, train); run `lpld " +
                                  key + "` on its own");
  }
  top.apply_yaml(root, path, sections);
  apply_section(root, "squeeze", c.squeeze, path);
  apply_section(root, "recover", c.recover, path);
  apply_section(root, "relabel", c.relabel, path);
  apply_section(root, "train", c.train, path);
  check_arg(!c.modes.empty() && !c.ipcs.empty() && !c.prune_ratios.empty() && !c.seeds.empty(),
            path, "modes, ipcs, prune_ratios and seeds must not be empty");
  for (const auto& m : c.modes) parse_choice<recover::RecoverMode>(m, path + ": modes");
  for (auto i : c.ipcs) check_arg(i >= 1, path + ": ipcs", "must be >= 1");
  for (auto r : c.prune_ratios) labels::check_prune_ratio(r, path + ": prune_ratios");
  return c;
}

std::string summary_markdown(const json& s) {
  std::string md = fmt::format("# lpld pipeline: {}\n\n", s.value("dataset", std::string()));
  md += fmt::format("Teacher `{}`: top-1 {:.2f}%\n\n", s["teacher"]["arch"].get<std::string>(),
                    s["teacher"]["top1"].get<double>());
  md +=
      "| mode | IPC | labels | label bytes | image bytes | student top-1 (%) | top-5 (%) | seeds "
      "|\n";
  md += "| --- | --- | --- | ---: | ---: | --- | --- | --- |\n";
  std::map<std::tuple<std::string, int64_t, double>, std::vector<json>> groups;
  for (const auto& r : s["runs"])
    groups[{r["mode"].get<std::string>(), r["ipc"].get<int64_t>(), r["prune_ratio"].get<double>()}]
        .push_back(r);
  for (const auto& group : groups) {
    const auto& runs = group.second;  // (a lambda cannot capture a structured binding in C++17)
    auto stat = [&](const char* field) {
      double mean = 0, var = 0;
      for (const auto& r : runs) mean += r[field].get<double>();
      mean /= runs.size();
      for (const auto& r : runs) var += std::pow(r[field].get<double>() - mean, 2);
      const double sd = runs.size() > 1 ? std::sqrt(var / (runs.size() - 1)) : 0;
      return runs.size() > 1 ? fmt::format("{:.2f} ± {:.2f}", mean, sd)
                             : fmt::format("{:.2f}", mean);
    };
    const auto& [mode, ipc, ratio] = group.first;
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", mode, ipc, factor(ratio),
                      runs[0]["label_bytes"].get<uint64_t>(), runs[0]["image_bytes"].get<int64_t>(),
                      stat("student_top1"), stat("student_top5"), runs.size());
  }
  // recover's stall restarts (recover/stall.h): a class that never converged is a tenth of
  // a 10-class set, so it is named here, not only in the log.
  const json sets = s.value("image_sets", json::object());
  for (const auto& [tag, set] : sets.items()) {
    if (set["restarts"].get<int64_t>() == 0 && set["unconverged"].empty()) continue;
    md += fmt::format("\nrecover {}: {} unit restart(s) after a stall", tag,
                      set["restarts"].get<int64_t>());
    md += set["unconverged"].empty() ? "; every class converged.\n"
                                     : "; did not converge: " + set["unconverged"].dump() + "\n";
  }
  const auto& sec = s["seconds"];
  md += fmt::format(
      "\nCompute seconds of these results: squeeze {:.0f}, recover {:.0f}, relabel {:.0f}, "
      "train {:.0f}, total {:.0f}.\n",
      sec["squeeze"].get<double>(), sec["recover"].get<double>(), sec["relabel"].get<double>(),
      sec["train"].get<double>(), sec["total"].get<double>());
  return md;
}

namespace {

// One pipeline invocation: each stage reuses its outputs when they exist for the same config,
// and every result it uses is recorded with its compute cost. Stage costs are those of the
// artifacts the summary uses, whether made now or reused: squeeze.json, the class.json files
// and each student's result.json keep their seconds; label stores have theirs in costs.json.
class PipelineRun {
 public:
  PipelineRun(const PipelineConfig& config, std::string out, Progress& progress)
      : config_(config), out_(std::move(out)), progress_(progress) {
    make_dirs(out_);
    costs_path_ = out_ + "/costs.json";
    costs_ = file_exists(costs_path_) ? read_json(costs_path_) : json::object();
  }

  // The teacher, reused when squeeze.json records the same config and checkpoint.
  void squeeze() {
    squeeze::SqueezeConfig sq = config_.squeeze;
    sq.out = teacher_ = out_ + "/teacher.safetensors";
    sq.seed = config_.seed;
    sq.device = config_.device;
    const std::string sq_json = out_ + "/squeeze.json";
    teacher_info_ =
        file_exists(sq_json) && file_exists(sq.out) ? read_json(sq_json) : json::object();
    if (teacher_info_.value("config", json()) == config_json(sq) &&
        teacher_info_.value("checkpoint_hash", std::string()) == hash_file(sq.out)) {
      progress_.message("squeeze: reusing " + sq.out);
    } else {
      auto r = squeeze::squeeze(sq, progress_);
      teacher_info_ = r.to_json();
      teacher_info_["config"] = config_json(sq);
      write_json(sq_json, teacher_info_);
      progress_.message(fmt::format("squeeze: teacher top-1 {:.2f}%", r.top1));
    }
    t_squeeze_ = teacher_info_["seconds"].get<double>();
    // relabel's `recipe: auto` resolved once for this teacher: what relabel itself resolves to,
    // so a store is compared with what relabel would make, and online students get its views
    relabel_ = resolve_recipe(
        config_.relabel, models::load_checkpoint(teacher_, torch::kCPU).meta.image_size, "relabel");
  }

  // The image set of one mode and IPC (recover resumes class by class by itself), then its
  // label stores and students.
  void image_set(const std::string& mode, int64_t ipc) {
    tag_ = fmt::format("{}-ipc{}", mode, ipc);
    mode_ = mode, ipc_ = ipc;
    recover::RecoverConfig rc = config_.recover;
    rc.teacher = teacher_;
    rc.out = images_ = out_ + "/images/" + tag_;
    rc.mode = parse_choice<recover::RecoverMode>(mode, "modes");
    rc.ipc = ipc;
    rc.seed = config_.seed;
    rc.device = config_.device;
    auto rr = recover::recover(rc, progress_);
    for (const auto& c : rr.classes) t_recover_ += c.seconds;
    image_bytes_ = rr.image_bytes;
    image_set_hash_.clear();
    image_sets_[tag_] = {{"teacher_top1", rr.teacher_top1},
                         {"images", rr.images},
                         {"image_bytes", rr.image_bytes},
                         {"restarts", read_json(rc.out + "/manifest.json")["restarts"]},
                         {"unconverged", rr.unconverged}};
    progress_.message(
        fmt::format("recover {}: teacher top-1 on the images {:.1f}%", tag_, rr.teacher_top1));
    if (mode == config_.modes.front() && ipc == config_.ipcs.front())
      write_image_grid(rc.out, out_ + "/images.png");
    for (double ratio : config_.prune_ratios) students_of_ratio(ratio);
    if (config_.online) online_students();
  }

  PipelineResult result(double seconds) const {
    PipelineResult result;
    result.summary = {
        {"dataset", config_.squeeze.data},
        {"num_classes", teacher_info_["num_classes"]},
        {"teacher", {{"arch", config_.squeeze.arch}, {"top1", teacher_info_["top1"]}}},
        {"image_sets", image_sets_},
        {"runs", runs_},
        {"runtime", runtime_info()},
        {"seconds",
         {{"squeeze", t_squeeze_},
          {"recover", t_recover_},
          {"relabel", t_relabel_},
          {"train", t_train_},
          {"total", t_squeeze_ + t_recover_ + t_relabel_ + t_train_},
          {"this_invocation", seconds}}}};
    result.markdown = summary_markdown(result.summary);
    return result;
  }

 private:
  // One label store per ratio, generating only its pool; reused when its header records the
  // same config, teacher and images. Then one student per seed.
  void students_of_ratio(double ratio) {
    relabel::RelabelConfig lc = relabel_;
    lc.teacher = teacher_;
    lc.images = images_;
    lc.prune_ratio = ratio;
    lc.seed = config_.seed;
    lc.device = config_.device;
    lc.out = out_ + "/labels/" + tag_ + "-" + ratio_tag(ratio) + ".lpld";
    if (!store_reusable(lc)) {
      costs_[lc.out] = relabel::relabel(lc, progress_).seconds;
      write_json(costs_path_, costs_);
    }
    t_relabel_ += costs_.value(lc.out, 0.0);
    const uint64_t label_bytes = std::filesystem::file_size(lc.out);
    for (int64_t seed : config_.seeds) {
      train::TrainConfig tc = config_.train;
      tc.labels = lc.out;
      tc.prune_ratio = ratio;
      tc.epochs = lc.epochs;
      if (config_.order_at_1x && ratio == 0)
        tc.granularity = labels::Granularity::epoch, tc.metric = "order";
      auto tr = train_and_record(tc, seed, ratio, label_bytes, ratio_tag(ratio));
      progress_.message(
          fmt::format("train {} {} seed {}: top-1 {:.2f}%", tag_, factor(ratio), seed, tr.top1));
    }
  }

  bool store_reusable(const relabel::RelabelConfig& lc) {
    if (!file_exists(lc.out)) return false;
    try {
      labels::LabelStore existing(lc.out);
      // the image set is hashed once, and only when a store is there to compare
      if (image_set_hash_.empty()) image_set_hash_ = labels::ImageSet::open(images_).hash();
      return existing.header().config == lc.identity() &&
             existing.header().teacher_hash == teacher_info_["checkpoint_hash"] &&
             existing.header().image_set_hash == image_set_hash_;
    } catch (const std::exception& e) {
      progress_.message(std::string("relabel: regenerating damaged store: ") + e.what());
      return false;
    }
  }

  // The unpruned reference: every view labelled by the teacher while training.
  void online_students() {
    for (int64_t seed : config_.seeds) {
      train::TrainConfig tc = config_.train;
      tc.labels = "online";
      tc.teacher = teacher_;
      const auto& lc = relabel_;
      tc.epochs = lc.epochs;
      tc.views = lc.views;
      tc.prune_ratio = 0;
      train_and_record(tc, seed, -1.0, 0, "online");
    }
  }

  // One student run, recorded in the summary (label_bytes 0 and ratio -1: online labels).
  train::TrainResult train_and_record(train::TrainConfig tc, int64_t seed, double ratio,
                                      uint64_t label_bytes, const std::string& run_tag) {
    tc.images = images_;
    tc.seed = static_cast<uint64_t>(seed);
    tc.device = config_.device;
    tc.val = config_.squeeze.val;
    tc.out = out_ + "/runs/" + tag_ + "-" + run_tag + fmt::format("-s{}", seed);
    auto tr = train::train_student(tc, progress_);
    t_train_ += tr.seconds;
    runs_.push_back({{"mode", mode_},
                     {"ipc", ipc_},
                     {"prune_ratio", ratio},
                     {"seed", seed},
                     {"label_bytes", label_bytes},
                     {"image_bytes", image_bytes_},
                     {"student_top1", tr.top1},
                     {"student_top5", tr.top5},
                     {"seconds", tr.seconds},
                     {"reused", tr.reused}});
    return tr;
  }

  const PipelineConfig& config_;
  std::string out_, costs_path_, teacher_;
  Progress& progress_;
  relabel::RelabelConfig relabel_;  // config_.relabel, its recipe resolved for the teacher
  json costs_, teacher_info_, runs_ = json::array(), image_sets_ = json::object();
  double t_squeeze_ = 0, t_recover_ = 0, t_relabel_ = 0, t_train_ = 0;
  // the image set in progress
  std::string tag_, mode_, images_, image_set_hash_;
  int64_t ipc_ = 0, image_bytes_ = 0;
};

}  // namespace

PipelineResult run_pipeline(const PipelineConfig& config, const std::string& out,
                            Progress& progress) {
  const auto start = Clock::now();
  PipelineRun run(config, out, progress);
  run.squeeze();
  for (const auto& mode : config.modes)
    for (int64_t ipc : config.ipcs) run.image_set(mode, ipc);
  PipelineResult result = run.result(seconds_since(start));
  write_json(out + "/summary.json", result.summary);
  write_file_atomic(out + "/summary.md", result.markdown);
  return result;
}

}  // namespace lpld::pipeline
