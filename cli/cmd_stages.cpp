// lpld squeeze / recover / relabel / train / analyze / labels / pipeline: parse, call the
// stage function, report one line on stdout and the result as JSON (--json).
#include <fmt/format.h>

#include <iostream>

#include "analyze/analyze.h"
#include "common.h"
#include "core/error.h"
#include "core/io.h"
#include "pipeline/pipeline.h"
#include "recover/recover.h"
#include "relabel/label_store.h"
#include "relabel/relabel.h"
#include "relabel/replay.h"
#include "squeeze/squeeze.h"
#include "train/student.h"

namespace lpld::cli {
namespace {

// Whether `name` is the subcommand: the first argument that is neither a global flag nor
// its value.
bool chosen(const Context& ctx, const std::string& name) {
  for (size_t i = 1; i < ctx.argv.size(); ++i) {
    if (ctx.argv[i] == "--threads") {
      ++i;
      continue;
    }
    if (!ctx.argv[i].empty() && ctx.argv[i][0] == '-') continue;
    return ctx.argv[i] == name;
  }
  return false;
}

// --recipe NAME is applied before --config and flags, so both override the preset.
std::string prescan(const Context& ctx, const std::string& flag) {
  for (size_t i = 0; i + 1 < ctx.argv.size(); ++i)
    if (ctx.argv[i] == flag) return ctx.argv[i + 1];
  for (const auto& a : ctx.argv)
    if (a.rfind(flag + "=", 0) == 0) return a.substr(flag.size() + 1);
  return "";
}

template <typename Config, typename Run>
void add_stage(CLI::App& app, Context& ctx, const std::string& name, const std::string& help,
               bool has_recipe, Run run) {
  auto* sub = app.add_subcommand(name, help);
  auto config = std::make_shared<Config>();
  auto json_path = std::make_shared<std::string>();
  if (chosen(ctx, name)) {
    if constexpr (std::is_same_v<Config, recover::RecoverConfig> ||
                  std::is_same_v<Config, train::TrainConfig>) {
      const std::string recipe = prescan(ctx, "--recipe");
      if (!recipe.empty()) config->apply_recipe(recipe);
    }
    preload_yaml(ctx, options_of(*config));
  }
  bind_options(sub, options_of(*config));
  if (has_recipe)
    sub->add_option("--recipe", "preset: imagenet1k, tiny or small (flags override it)");
  sub->add_option("--config", "YAML file with these options (flags override it)");
  sub->add_option("--json", *json_path, "write the result as JSON here");
  sub->callback([&ctx, config, json_path, run] {
    ctx.run = [&ctx, config, json_path, run] {
      json j = run(*config, ctx.progress());
      j["config"] = config_json(*config);
      write_result(*json_path, j);
    };
  });
}

}  // namespace

void add_stage_commands(CLI::App& app, Context& ctx) {
  add_stage<squeeze::SqueezeConfig>(
      app, ctx, "squeeze",
      "train a teacher, evaluate it, gather class-wise BN statistics (Stage 1)", false,
      [](const squeeze::SqueezeConfig& c, Progress& p) {
        auto r = squeeze::squeeze(c, p);
        std::cout << fmt::format(
            "teacher {} top-1 {:.2f}% top-5 {:.2f}%  train {:.1f}s ({:.0f} img/s)  "
            "class stats {:.1f}s  -> {}\n",
            c.arch, r.top1, r.top5, r.train_seconds, r.images_per_second, r.stats_seconds,
            r.checkpoint);
        return r.to_json();
      });
  add_stage<recover::RecoverConfig>(
      app, ctx, "recover", "synthesize IPC images per class from the teacher (Stage 2)", true,
      [](const recover::RecoverConfig& c, Progress& p) {
        auto r = recover::recover(c, p);
        std::cout << fmt::format(
            "recover {} ipc {}: {} images ({} bytes) in {:.1f}s, {:.1f} it/s, "
            "{:.0f} image-it/s, teacher top-1 on them {:.1f}%\n",
            c.mode, c.ipc, r.images, r.image_bytes, r.seconds, r.iterations_per_second,
            r.image_iterations_per_second, r.teacher_top1);
        return r.to_json();
      });
  add_stage<relabel::RelabelConfig>(
      app, ctx, "relabel", "soft labels for the label pool, into one label store (Stage 3)", false,
      [](const relabel::RelabelConfig& c, Progress& p) {
        auto r = relabel::relabel(c, p);
        std::cout << fmt::format(
            "relabel: {} of {} steps, {} views in {:.1f}s ({:.0f} views/s); "
            "{} label bytes ({} logits, {} metadata); images {} bytes -> {}\n",
            r.steps_kept, r.total_steps, r.labelled_views, r.seconds, r.views_per_second,
            r.label_bytes, r.logit_bytes, r.metadata_bytes, r.image_bytes, r.out);
        return r.to_json();
      });
  add_stage<train::TrainConfig>(
      app, ctx, "train", "train a student on the synthetic set with pruned soft labels (Stage 4)",
      true, [](const train::TrainConfig& c, Progress& p) {
        auto r = train::train_student(c, p);
        std::cout << fmt::format(
            "student {} top-1 {:.2f}% top-5 {:.2f}% ({} steps, {:.1f}s, {:.0f} img/s){}\n", c.arch,
            r.top1, r.top5, r.steps, r.seconds, r.images_per_second, r.reused ? " [reused]" : "");
        return r.to_json();
      });

  add_stage<analyze::AnalyzeConfig>(
      app, ctx, "analyze", "within-class similarity, top-1 on the synthetic set, storage", false,
      [](const analyze::AnalyzeConfig& c, Progress& p) {
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
      });

  // labels info / verify
  auto* labels = app.add_subcommand("labels", "inspect or verify a label store");
  labels->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  auto* info = labels->add_subcommand("info", "steps, images, classes and bytes by part");
  info->add_option("file", *file, "label store")->required();
  info->callback([&ctx, file] {
    ctx.run = [file] {
      relabel::LabelStore s(*file);
      const auto& h = s.header();
      std::cout << fmt::format(
          "{}\n  images {}  classes {}  image size {}  epochs {}  batch size {}  batches/epoch {}\n"
          "  steps kept {} of {} (prune ratio {}, {:.1f}x)  logits {}  seed {}  cutmix {}\n"
          "  bytes: total {}  logits {}  metadata {} ({:.2f}% of logits)\n",
          *file, h.num_images, h.num_classes, h.image_size, h.epochs, h.batch_size,
          h.batches_per_epoch(), h.steps_kept, h.total_steps(), h.prune_ratio,
          static_cast<double>(h.total_steps()) / h.steps_kept, h.dtype, h.seed,
          h.cutmix ? fmt::format("alpha {}", h.cutmix_alpha) : "off", s.file_bytes(),
          s.logit_bytes(), s.file_bytes() - s.logit_bytes(),
          100.0 * (s.file_bytes() - s.logit_bytes()) / std::max<uint64_t>(1, s.logit_bytes()));
    };
  });
  auto* verify = labels->add_subcommand("verify", "check every checksum; non-zero exit on damage");
  verify->add_option("file", *file, "label store")->required();
  verify->callback([&ctx, file] {
    ctx.run = [file] {
      relabel::LabelStore s(*file);
      s.verify();
      std::cout << fmt::format("{}: OK ({} steps, {} bytes)\n", *file, s.header().steps_kept,
                               s.file_bytes());
    };
  });

  auto* steps = labels->add_subcommand(
      "steps", "each label step's images, classes, views and CutMix, one JSON line per step");
  steps->add_option("file", *file, "label store")->required();
  auto steps_out = std::make_shared<std::string>();
  steps->add_option("--out", *steps_out, "JSON-lines file to write (default: standard output)");
  steps->callback([&ctx, file, steps_out] {
    ctx.run = [file, steps_out] {
      relabel::LabelStore s(*file);
      const auto& h = s.header();
      std::string text;
      std::vector<int64_t> order;
      for (int64_t step = 0; step < h.steps_kept; ++step) {
        if (step % h.batches_per_epoch() == 0)
          order = relabel::epoch_order(h, step / h.batches_per_epoch());
        text += relabel::describe_step(h, relabel::plan_step(h, step, &order)).dump() + "\n";
      }
      if (steps_out->empty())
        std::cout << text;
      else
        write_file_atomic(*steps_out, text);
    };
  });

  // pipeline
  auto* pipe =
      app.add_subcommand("pipeline", "squeeze -> recover -> relabel -> train from a YAML config");
  auto pconfig = std::make_shared<std::string>();
  auto pout = std::make_shared<std::string>();
  pipe->add_option("--config", *pconfig, "pipeline YAML (README: Pipeline config)")->required();
  pipe->add_option("--out", *pout, "run folder")->required();
  pipe->callback([&ctx, pconfig, pout] {
    ctx.run = [&ctx, pconfig, pout] {
      auto config = pipeline::load_pipeline_config(*pconfig);
      auto r = pipeline::run_pipeline(config, *pout, ctx.progress());
      std::cout << r.markdown;
    };
  });
}

}  // namespace lpld::cli
