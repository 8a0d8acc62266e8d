#include "common.h"

#include <yaml-cpp/yaml.h>

#include "core/error.h"

namespace lpld::cli {

Progress& Context::progress() {
  if (!progress_) progress_ = std::make_unique<ConsoleProgress>(quiet);
  return *progress_;
}

void bind_options(CLI::App* sub, const OptionSet& set) {
  for (const auto& o : set.options()) {
    std::string flag = o.name;
    std::replace(flag.begin(), flag.end(), '_', '-');
    std::visit(
        [&](auto* field) {
          using T = std::decay_t<decltype(*field)>;
          if constexpr (std::is_same_v<T, bool>) {
            sub->add_flag("--" + flag + ",!--no-" + flag, *field, o.help);
          } else if constexpr (std::is_same_v<T, std::vector<double>> ||
                               std::is_same_v<T, std::vector<int64_t>> ||
                               std::is_same_v<T, std::vector<std::string>>) {
            sub->add_option("--" + flag, *field, o.help)->delimiter(',')->capture_default_str();
          } else {
            sub->add_option("--" + flag, *field, o.help)->capture_default_str();
          }
        },
        o.target);
  }
}

void preload_yaml(const Context& ctx, const OptionSet& set) {
  for (size_t i = 0; i < ctx.argv.size(); ++i) {
    std::string path;
    if (ctx.argv[i] == "--config" && i + 1 < ctx.argv.size())
      path = ctx.argv[i + 1];
    else if (ctx.argv[i].rfind("--config=", 0) == 0)
      path = ctx.argv[i].substr(9);
    if (path.empty()) continue;
    YAML::Node node;
    try {
      node = YAML::LoadFile(path);
    } catch (const YAML::Exception& e) {
      fail_file(path, std::string("cannot read YAML: ") + e.what());
    }
    set.apply_yaml(node, path);
  }
}

void write_result(const std::string& path, const json& result) {
  if (!path.empty()) write_json(path, result);
}

}  // namespace lpld::cli
