// lpld eval / labels info|verify|steps / pipeline: parse, call one library function, print.
#include <fmt/format.h>

#include <iostream>

#include "common.h"
#include "engine/evaluate.h"
#include "labels/inspect.h"
#include "pipeline/pipeline.h"

namespace lpld::cli {
namespace {

void add_eval(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("eval", "top-1/top-5 of a checkpoint on a labelled set");
  auto config = std::make_shared<engine::EvalConfig>();
  auto json_path = std::make_shared<std::string>();
  bind_config(sub, config, "");
  sub->add_option("--json", *json_path, "write the result as JSON here");
  sub->callback([&ctx, config, json_path] {
    ctx.run = [&ctx, config, json_path] {
      auto r = engine::evaluate_checkpoint(*config, ctx.progress());
      write_result(*json_path, engine::to_json(r));
      std::cout << fmt::format("top-1 {:.2f}% top-5 {:.2f}% on {} images ({:.1f}s)\n", r.top1,
                               r.top5, r.images, r.seconds);
    };
  });
}

void print_info(const json& i) {
  const auto& b = i["bytes"];
  const auto& codec = i["codec"];
  const int64_t topk = codec["topk"].get<int64_t>();
  std::cout << fmt::format(
      "{} (format {}, replay version {})\n"
      "  images {}  classes {}  image size {}  epochs {}  batch size {}  batches/epoch {}\n"
      "  steps kept {} of {} (prune ratio {}, {:.1f}x)  logits {}{}{}  seed {}  cutmix {}\n"
      "  bytes: total {} = header {} + values {} + quantization {} + indices {} + views {} + "
      "digests/checksums {} + image labels {}\n"
      "  {:.1f}x fewer bytes than the 1x fp16 store of this run ({} bytes)\n",
      i["file"].get<std::string>(), i["format_version"].get<int>(), i["replay_version"].get<int>(),
      i["images"].get<int64_t>(), i["classes"].get<int64_t>(), i["image_size"].get<int64_t>(),
      i["epochs"].get<int64_t>(), i["batch_size"].get<int64_t>(),
      i["batches_per_epoch"].get<int64_t>(), i["steps_kept"].get<int64_t>(),
      i["total_steps"].get<int64_t>(), i["prune_ratio"].get<double>(),
      i["total_steps"].get<double>() / i["steps_kept"].get<double>(),
      codec["values"].get<std::string>(), topk > 0 ? fmt::format(" top-{}", topk) : "",
      i["views_stored"].get<bool>() ? ", views stored" : "", i["seed"].get<uint64_t>(),
      i["cutmix_alpha"].is_null() ? "off"
                                  : fmt::format("alpha {}", i["cutmix_alpha"].get<double>()),
      b["total"].get<uint64_t>(), b["header"].get<uint64_t>(), b["values"].get<uint64_t>(),
      b["quantization_params"].get<uint64_t>(), b["indices"].get<uint64_t>(),
      b["views"].get<uint64_t>(), b["digests_and_checksums"].get<uint64_t>(),
      b["image_labels"].get<uint64_t>(), b["compression_vs_fp16_1x"].get<double>(),
      b["fp16_1x"].get<uint64_t>());
}

void add_labels(CLI::App& app, Context& ctx) {
  auto* labels = app.add_subcommand("labels", "inspect or verify a label store");
  labels->require_subcommand(1);
  auto config = std::make_shared<labels::InspectConfig>();
  auto* info = labels->add_subcommand("info", "steps, images, classes and bytes by part");
  auto* verify = labels->add_subcommand("verify", "check every checksum; non-zero exit on damage");
  auto* steps = labels->add_subcommand(
      "steps", "each label step's images, classes, views and CutMix, one JSON line per step");
  for (auto* sub : {info, verify, steps})
    sub->add_option("file", config->file, "label store")->required();
  steps->add_option("--out", config->out, "JSON-lines file to write (default: standard output)");
  info->callback(
      [&ctx, config] { ctx.run = [config] { print_info(labels::store_info(*config)); }; });
  verify->callback([&ctx, config] {
    ctx.run = [config] {
      auto r = labels::verify_store(*config);
      std::cout << fmt::format("{}: OK ({} steps, {} bytes)\n", config->file,
                               r["steps"].get<int64_t>(), r["bytes"].get<uint64_t>());
    };
  });
  steps->callback([&ctx, config] {
    ctx.run = [config] {
      const std::string text = labels::describe_steps(*config);
      if (config->out.empty()) std::cout << text;
    };
  });
}

void add_pipeline(CLI::App& app, Context& ctx) {
  auto* pipe =
      app.add_subcommand("pipeline", "squeeze -> recover -> relabel -> train from a YAML config");
  auto path = std::make_shared<std::string>(), out = std::make_shared<std::string>();
  pipe->add_option("--config", *path, "pipeline YAML (README: Pipeline config)")->required();
  pipe->add_option("--out", *out, "run folder")->required();
  pipe->callback([&ctx, path, out] {
    ctx.run = [&ctx, path, out] {
      auto config = pipeline::load_pipeline_config(*path);
      auto r = pipeline::run_pipeline(config, *out, ctx.progress());
      std::cout << r.markdown;
    };
  });
}

}  // namespace

void add_tool_commands(CLI::App& app, Context& ctx) {
  add_eval(app, ctx);
  add_labels(app, ctx);
  add_pipeline(app, ctx);
}

}  // namespace lpld::cli
