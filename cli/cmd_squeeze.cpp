// lpld eval: top-1/top-5 of any checkpoint on a labelled set.
#include <fmt/format.h>

#include <iostream>

#include "common.h"
#include "core/error.h"
#include "core/runtime.h"
#include "data/dataset.h"
#include "models/checkpoint.h"
#include "train/evaluate.h"

namespace lpld::cli {

struct EvalConfig {
  std::string model, data, device = "cpu";
  int64_t batch_size = 100;
  void declare(OptionSet& o) {
    o.add("model", &model, "checkpoint to evaluate")
        .add("data", &data, "labelled dataset spec")
        .add("device", &device, "cpu, cuda or cuda:N")
        .add("batch_size", &batch_size, "evaluation batch size");
  }
};

void add_eval_command(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("eval", "top-1/top-5 of a checkpoint on a labelled set");
  auto config = std::make_shared<EvalConfig>();
  auto json_path = std::make_shared<std::string>();
  bind_options(sub, options_of(*config));
  sub->add_option("--json", *json_path, "write the result as JSON here");
  sub->callback([&ctx, config, json_path] {
    ctx.run = [&ctx, config, json_path] {
      check_arg(!config->model.empty(), "--model", "a checkpoint is required");
      check_arg(!config->data.empty(), "--data", "a dataset spec is required");
      check_arg(config->batch_size >= 1, "--batch-size", "must be >= 1");
      const auto device = parse_device(config->device);
      auto ck = models::load_checkpoint(config->model, device);
      auto ds = data::open_dataset(config->data);
      check_arg(ds->num_classes() == ck.meta.num_classes, "--data",
                "has " + std::to_string(ds->num_classes()) + " classes, the model " +
                    std::to_string(ck.meta.num_classes));
      check_arg(ds->channels() == ck.meta.channels, "--data",
                "has " + std::to_string(ds->channels()) + " channels, the model " +
                    std::to_string(ck.meta.channels));
      if (ds->fixed_size()[0] > 0) ds = data::load_into_memory(ds);
      auto r = train::evaluate(*ck.model, ds, ck.meta.norm, ck.meta.image_size, device,
                               ctx.progress(), config->batch_size);
      write_result(*json_path, {{"top1", r.top1},
                                {"top5", r.top5},
                                {"images", r.images},
                                {"seconds", r.seconds},
                                {"images_per_second", r.images_per_second}});
      std::cout << fmt::format("top-1 {:.2f}% top-5 {:.2f}% on {} images ({:.1f}s)\n", r.top1,
                               r.top5, r.images, r.seconds);
    };
  });
}

}  // namespace lpld::cli
