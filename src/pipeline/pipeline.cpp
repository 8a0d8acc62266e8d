#include "pipeline/pipeline.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "core/clock.h"
#include "core/error.h"
#include "pipeline/image_grid.h"
#include "relabel/image_set.h"
#include "relabel/label_store.h"

namespace lpld::pipeline {
namespace fs = std::filesystem;
namespace {

template <typename Config>
void apply_section(const YAML::Node& root, const std::string& key, Config& config,
                   const std::string& path) {
  const YAML::Node node = root[key];
  if (!node) return;
  check_arg(node.IsMap(), path + ": " + key, "expected a map of options");
  YAML::Node rest = YAML::Clone(node);
  if (rest["recipe"]) {
    if constexpr (std::is_same_v<Config, recover::RecoverConfig> ||
                  std::is_same_v<Config, train::TrainConfig>) {
      config.apply_recipe(rest["recipe"].as<std::string>());
    } else {
      throw std::invalid_argument(path + ": " + key + ": unknown key 'recipe'");
    }
    rest.remove("recipe");
  }
  options_of(config).apply_yaml(rest, path + ": " + key);
}

std::string ratio_tag(double r) { return fmt::format("r{:g}", r); }
std::string factor(double r) { return r < 0 ? "online" : fmt::format("{:g}x", 1.0 / (1.0 - r)); }

}  // namespace

PipelineConfig load_pipeline_config(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    fail_file(path, std::string("cannot read YAML: ") + e.what());
  }
  check_arg(root.IsMap(), path, "expected a map at the top level");
  PipelineConfig c;
  OptionSet top;
  top.add("modes", &c.modes, "")
      .add("ipcs", &c.ipcs, "")
      .add("prune_ratios", &c.prune_ratios, "")
      .add("seeds", &c.seeds, "")
      .add("online", &c.online, "")
      .add("seed", &c.seed, "")
      .add("device", &c.device, "");
  YAML::Node rest = YAML::Clone(root);
  for (const char* k : {"squeeze", "recover", "relabel", "train"}) rest.remove(k);
  top.apply_yaml(rest, path);
  apply_section(root, "squeeze", c.squeeze, path);
  apply_section(root, "recover", c.recover, path);
  apply_section(root, "relabel", c.relabel, path);
  apply_section(root, "train", c.train, path);
  check_arg(!c.modes.empty() && !c.ipcs.empty() && !c.prune_ratios.empty() && !c.seeds.empty(),
            path, "modes, ipcs, prune_ratios and seeds must not be empty");
  for (const auto& m : c.modes)
    check_arg(m == "class" || m == "mixed", path + ": modes", "'" + m + "' is not class or mixed");
  for (auto i : c.ipcs) check_arg(i >= 1, path + ": ipcs", "must be >= 1");
  for (auto r : c.prune_ratios)
    check_arg(r >= 0 && r < 1, path + ": prune_ratios", fmt::format("{} is not in [0, 1)", r));
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
  for (const auto& [key, runs] : groups) {
    auto stat = [&](const char* field) {
      double mean = 0, var = 0;
      for (const auto& r : runs) mean += r[field].get<double>();
      mean /= runs.size();
      for (const auto& r : runs) var += std::pow(r[field].get<double>() - mean, 2);
      const double sd = runs.size() > 1 ? std::sqrt(var / (runs.size() - 1)) : 0;
      return runs.size() > 1 ? fmt::format("{:.2f} ± {:.2f}", mean, sd)
                             : fmt::format("{:.2f}", mean);
    };
    const auto& [mode, ipc, ratio] = key;
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", mode, ipc, factor(ratio),
                      runs[0]["label_bytes"].get<uint64_t>(), runs[0]["image_bytes"].get<int64_t>(),
                      stat("student_top1"), stat("student_top5"), runs.size());
  }
  const auto& sec = s["seconds"];
  md += fmt::format(
      "\nCompute seconds of these results: squeeze {:.0f}, recover {:.0f}, relabel {:.0f}, "
      "train {:.0f}, total {:.0f}.\n",
      sec["squeeze"].get<double>(), sec["recover"].get<double>(), sec["relabel"].get<double>(),
      sec["train"].get<double>(), sec["total"].get<double>());
  return md;
}

PipelineResult run_pipeline(const PipelineConfig& config, const std::string& out,
                            Progress& progress) {
  const auto start = Clock::now();
  make_dirs(out);
  // Stage costs are those of the artifacts the summary uses, whether made now or reused:
  // squeeze.json, the class.json files and each student's result.json keep their seconds;
  // label stores have theirs in costs.json.
  double t_squeeze = 0, t_recover = 0, t_relabel = 0, t_train = 0;
  const std::string costs_path = out + "/costs.json";
  json costs = file_exists(costs_path) ? read_json(costs_path) : json::object();

  // --- squeeze (reused when squeeze.json records the same config) ---
  squeeze::SqueezeConfig sq = config.squeeze;
  sq.out = out + "/teacher.safetensors";
  sq.seed = config.seed;
  sq.device = config.device;
  const std::string sq_json = out + "/squeeze.json";
  json teacher_info =
      file_exists(sq_json) && file_exists(sq.out) ? read_json(sq_json) : json::object();
  if (teacher_info.value("config", json()) == config_json(sq) &&
      teacher_info.value("checkpoint_hash", std::string()) == hash_file(sq.out)) {
    progress.message("squeeze: reusing " + sq.out);
  } else {
    auto r = squeeze::squeeze(sq, progress);
    teacher_info = r.to_json();
    teacher_info["config"] = config_json(sq);
    write_json(sq_json, teacher_info);
    progress.message(fmt::format("squeeze: teacher top-1 {:.2f}%", r.top1));
  }
  t_squeeze = teacher_info["seconds"].get<double>();
  const std::string teacher_hash = teacher_info["checkpoint_hash"];  // checked or just made

  json runs = json::array();
  for (const auto& mode : config.modes) {
    for (int64_t ipc : config.ipcs) {
      const std::string tag = fmt::format("{}-ipc{}", mode, ipc);
      // --- recover (resumes class by class by itself) ---
      recover::RecoverConfig rc = config.recover;
      rc.teacher = sq.out;
      rc.out = out + "/images/" + tag;
      rc.mode = mode;
      rc.ipc = ipc;
      rc.seed = config.seed;
      rc.device = config.device;
      auto rr = recover::recover(rc, progress);
      for (const auto& c : rr.classes) t_recover += c.seconds;
      progress.message(
          fmt::format("recover {}: teacher top-1 on the images {:.1f}%", tag, rr.teacher_top1));
      if (mode == config.modes.front() && ipc == config.ipcs.front())
        write_image_grid(rc.out, out + "/images.png");
      std::string image_set_hash;  // loaded once, and only when a store is there to compare
      auto set_hash = [&] {
        if (image_set_hash.empty()) image_set_hash = relabel::load_image_set(rc.out).hash;
        return image_set_hash;
      };
      // One student run, recorded in the summary (label_bytes 0 and ratio -1: online labels).
      auto train_and_record = [&](train::TrainConfig tc, int64_t seed, double ratio,
                                  uint64_t label_bytes, const std::string& run_tag) {
        tc.images = rc.out;
        tc.seed = static_cast<uint64_t>(seed);
        tc.device = config.device;
        tc.val = config.squeeze.val;
        tc.out = out + "/runs/" + tag + "-" + run_tag + fmt::format("-s{}", seed);
        auto tr = train::train_student(tc, progress);
        t_train += tr.seconds;
        runs.push_back({{"mode", mode},
                        {"ipc", ipc},
                        {"prune_ratio", ratio},
                        {"seed", seed},
                        {"label_bytes", label_bytes},
                        {"image_bytes", rr.image_bytes},
                        {"student_top1", tr.top1},
                        {"student_top5", tr.top5},
                        {"seconds", tr.seconds},
                        {"reused", tr.reused}});
        return tr;
      };

      for (double ratio : config.prune_ratios) {
        // --- relabel: one store per ratio, generating only its pool ---
        relabel::RelabelConfig lc = config.relabel;
        lc.teacher = sq.out;
        lc.images = rc.out;
        lc.prune_ratio = ratio;
        lc.seed = config.seed;
        lc.device = config.device;
        lc.out = out + "/labels/" + tag + "-" + ratio_tag(ratio) + ".lpld";
        bool reuse = false;
        if (file_exists(lc.out)) {
          try {
            relabel::LabelStore existing(lc.out);
            reuse = existing.header().config == lc.identity() &&
                    existing.header().teacher_hash == teacher_hash &&
                    existing.header().image_set_hash == set_hash();
          } catch (const std::exception& e) {
            progress.message(std::string("relabel: regenerating damaged store: ") + e.what());
          }
        }
        if (!reuse) {
          costs[lc.out] = relabel::relabel(lc, progress).seconds;
          write_json(costs_path, costs);
        }
        t_relabel += costs.value(lc.out, 0.0);
        const uint64_t label_bytes = std::filesystem::file_size(lc.out);
        // --- train one student per seed ---
        for (int64_t seed : config.seeds) {
          train::TrainConfig tc = config.train;
          tc.labels = lc.out;
          tc.prune_ratio = ratio;
          tc.epochs = lc.epochs;
          auto tr = train_and_record(tc, seed, ratio, label_bytes, ratio_tag(ratio));
          progress.message(
              fmt::format("train {} {} seed {}: top-1 {:.2f}%", tag, factor(ratio), seed, tr.top1));
        }
      }
      if (config.online) {
        for (int64_t seed : config.seeds) {
          train::TrainConfig tc = config.train;
          tc.labels = "online";
          tc.teacher = sq.out;
          tc.epochs = config.relabel.epochs;
          tc.batch_size = config.relabel.batch_size;
          tc.cutmix = config.relabel.cutmix;
          tc.cutmix_alpha = config.relabel.cutmix_alpha;
          tc.crop_scale_min = config.relabel.crop_scale_min;
          tc.prune_ratio = 0;
          train_and_record(tc, seed, -1.0, 0, "online");
        }
      }
    }
  }
  PipelineResult result;
  result.summary = {{"dataset", config.squeeze.data},
                    {"num_classes", teacher_info["num_classes"]},
                    {"teacher", {{"arch", config.squeeze.arch}, {"top1", teacher_info["top1"]}}},
                    {"runs", runs},
                    {"seconds",
                     {{"squeeze", t_squeeze},
                      {"recover", t_recover},
                      {"relabel", t_relabel},
                      {"train", t_train},
                      {"total", t_squeeze + t_recover + t_relabel + t_train},
                      {"this_invocation", seconds_since(start)}}}};
  result.markdown = summary_markdown(result.summary);
  write_json(out + "/summary.json", result.summary);
  write_file_atomic(out + "/summary.md", result.markdown);
  return result;
}

}  // namespace lpld::pipeline
