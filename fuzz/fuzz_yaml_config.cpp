// YAML configs: yaml-cpp, then a config's declared options (core/options.h), as every stage's
// `--config FILE` and each section of a pipeline YAML reach them. The config below declares an
// option of every kind a stage has and a recipe, so no stage need be built for the fuzzer
// (issue: a fast test command); the pipeline's own keys are plain lists of these.
#include "core/options.h"
#include "fuzz_common.h"

namespace {
enum class Kind { one, other };
const std::vector<lpld::Choice<Kind>>& choices(Kind) {
  static const std::vector<lpld::Choice<Kind>> table = {{Kind::one, "one"}, {Kind::other, "other"}};
  return table;
}

struct EveryKind {
  std::string recipe = "auto", name;
  int64_t count = 1;
  uint64_t seed = 0;
  double rate = 0.1;
  bool flag = false, paired = false;
  double alpha = 1;
  std::vector<double> ratios;
  std::vector<int64_t> sizes;
  std::vector<std::string> modes;
  Kind kind = Kind::one;  // a choice (core/choice.h)
  void declare(lpld::OptionSet& o) {
    o.add("recipe", &recipe, "")
        .add("name", &name, "")
        .add("count", &count, "")
        .add("seed", &seed, "")
        .add("rate", &rate, "")
        .add("flag", &flag, "")
        .add("paired", &paired, "")
        .value_sets("alpha")
        .add("alpha", &alpha, "")
        .add("ratios", &ratios, "")
        .add("sizes", &sizes, "")
        .add("modes", &modes, "")
        .add("kind", &kind, "");
  }
  void apply_recipe(const std::string& r) {
    if (r != "auto" && r != "small") throw std::invalid_argument("recipe: unknown '" + r + "'");
    recipe = r;
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lpld::fuzz::run([&] {
    const std::string path = lpld::fuzz::write("c.yaml", data, size);
    EveryKind config;
    lpld::apply_yaml_config(config, lpld::load_yaml_file(path), path);
    (void)lpld::config_json(config);
  });
}
