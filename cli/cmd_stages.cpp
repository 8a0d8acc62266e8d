// lpld squeeze / recover / relabel / train / analyze: parse, call the stage function, report
// one line on stdout and the result as JSON (--json).
#include <fmt/format.h>

#include <iostream>

#include "analyze/analyze.h"
#include "common.h"
#include "core/dist.h"
#include "core/runtime.h"
#include "import/import.h"
#include "recover/recover.h"
#include "relabel/relabel.h"
#include "squeeze/squeeze.h"
#include "train/student.h"

namespace lpld::cli {
namespace {

// One subcommand over a stage: `run(config, progress)` returns the result as JSON and prints
// its line; the resolved config is added to the --json file.
template <typename Config, typename Run>
void add_stage(CLI::App& app, Context& ctx, const std::string& name, const std::string& help,
               const std::string& recipes, Run run) {
  auto* sub = app.add_subcommand(name, help);
  auto config = std::make_shared<Config>();
  auto json_path = std::make_shared<std::string>();
  bind_config(sub, config, recipes);
  sub->add_option("--json", *json_path, "write the result as JSON here");
  sub->callback([&ctx, config, json_path, run] {
    ctx.run = [&ctx, config, json_path, run] {
      json j = run(*config, ctx.progress());
      j["config"] = config_json(*config);
      j["runtime"] = runtime_info();
      if (DistEnv::from_environment().rank == 0) write_result(*json_path, j);  // rank 0 alone
    };
  });
}

json run_squeeze(const squeeze::SqueezeConfig& c, Progress& p) {
  auto r = squeeze::squeeze(c, p);
  std::cout << fmt::format(
      "teacher {} ({} recipe) top-1 {:.2f}% top-5 {:.2f}%  train {:.1f}s ({:.0f} img/s)  "
      "class stats {:.1f}s  -> {}\n",
      c.arch, r.recipe, r.top1, r.top5, r.train_seconds, r.images_per_second, r.stats_seconds,
      r.checkpoint);
  return r.to_json();
}

json run_recover(const recover::RecoverConfig& c, Progress& p) {
  auto r = recover::recover(c, p);
  if (const DistEnv env = DistEnv::from_environment(); env.rank > 0) {
    std::cout << fmt::format("recover {}: its share in {:.1f}s, {:.1f} it/s\n", env.where(),
                             r.seconds, r.iterations_per_second);
    return r.to_json();
  }
  std::cout << fmt::format(
      "recover {} ipc {}: {} images ({} bytes) in {:.1f}s, {:.1f} it/s, "
      "{:.0f} image-it/s, teacher top-1 on them {:.1f}%, {} restart(s){}\n",
      choice_name(c.mode), c.ipc, r.images, r.image_bytes, r.seconds, r.iterations_per_second,
      r.image_iterations_per_second, r.teacher_top1, r.restarts,
      r.unconverged.empty() ? "" : "; NOT CONVERGED: " + r.unconverged.dump());
  return r.to_json();
}

json run_relabel(const relabel::RelabelConfig& c, Progress& p) {
  auto r = relabel::relabel(c, p);
  if (const DistEnv env = DistEnv::from_environment(); env.rank > 0) {
    std::cout << fmt::format("relabel {}: its share done in {:.1f}s\n", env.where(), r.seconds);
    return r.to_json();
  }
  std::cout << fmt::format(
      "relabel: {} of {} steps, {} views in {:.1f}s ({:.0f} views/s); "
      "{} label bytes ({} logits, {} metadata); images {} bytes -> {}\n",
      r.steps_kept, r.total_steps, r.labelled_views, r.seconds, r.views_per_second, r.label_bytes,
      r.logit_bytes, r.metadata_bytes, r.image_bytes, r.out);
  return r.to_json();
}

json run_train(const train::TrainConfig& c, Progress& p) {
  auto r = train::train_student(c, p);
  std::cout << fmt::format(
      "student {} top-1 {:.2f}% top-5 {:.2f}% ({} steps, {:.1f}s, {:.0f} img/s){}\n", c.arch,
      r.top1, r.top5, r.steps, r.seconds, r.images_per_second, r.reused ? " [reused]" : "");
  return r.to_json();
}

json run_import(const import::ImportConfig& c, Progress& p) {
  auto r = import::import_teacher(c, p);
  std::cout << fmt::format("import {} ({}{}): {} tensors, {} classes, {} px -> {} ({:.1f}s)\n",
                           c.from, r.source_format,
                           r.prefix.empty() ? "" : ", under '" + r.prefix + "'", r.tensors,
                           r.num_classes, r.image_size, r.out, r.seconds);
  return r.to_json();
}

json run_analyze(const analyze::AnalyzeConfig& c, Progress& p) {
  auto r = analyze::analyze(c, p);
  std::cout << fmt::format("within-class similarity: synthetic {:.4f}", r.synthetic.overall);
  if (!r.real.per_class.empty()) std::cout << fmt::format(", real {:.4f}", r.real.overall);
  std::cout << fmt::format(
      "\ntop-1 of the model on the synthetic set: {:.2f}%\nimages: {} ({} bytes)\n",
      r.synthetic_top1, r.images, r.image_bytes);
  for (const auto& s : r.storage)
    std::cout << fmt::format("labels {}: R {} ({} steps) {} bytes, {:.2f}x the images\n",
                             s["file"].get<std::string>(), s["prune_ratio"].get<double>(),
                             s["steps_kept"].get<int64_t>(), s["label_bytes"].get<uint64_t>(),
                             s["labels_to_images"].get<double>());
  return r.to_json();
}

}  // namespace

void add_stage_commands(CLI::App& app, Context& ctx) {
  add_stage<squeeze::SqueezeConfig>(
      app, ctx, "squeeze",
      "train a teacher, evaluate it, gather class-wise BN statistics (Stage 1)",
      "auto, small, official, tiny or imagenet1k", run_squeeze);
  add_stage<recover::RecoverConfig>(
      app, ctx, "recover", "synthesize IPC images per class from the teacher (Stage 2)",
      "auto (from the teacher), imagenet1k, tiny or small", run_recover);
  add_stage<relabel::RelabelConfig>(
      app, ctx, "relabel", "soft labels for the label pool, into one label store (Stage 3)",
      "auto (from the teacher), imagenet1k, tiny or small", run_relabel);
  add_stage<train::TrainConfig>(
      app, ctx, "train", "train a student on the synthetic set with pruned soft labels (Stage 4)",
      "auto (from the labels), imagenet1k, tiny or small", run_train);
  add_stage<import::ImportConfig>(
      app, ctx, "import",
      "a teacher from published weights (torch.save or safetensors): then squeeze --init", "",
      run_import);
  add_stage<analyze::AnalyzeConfig>(app, ctx, "analyze",
                                    "within-class similarity, top-1 on the synthetic set, storage",
                                    "", run_analyze);
}

}  // namespace lpld::cli
