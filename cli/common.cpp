#include "common.h"

#include "core/error.h"

namespace lpld::cli {

Progress& Context::progress() {
  if (progress_) return *progress_;
  progress_ = std::make_unique<ConsoleProgress>(quiet);
  if (!progress_log.empty())
    progress_ = std::make_unique<LoggedProgress>(std::move(progress_), progress_log);
  return *progress_;
}

void bind_options(CLI::App* sub, const OptionSet& set, const std::string& skip) {
  for (const auto& o : set.options()) {
    if (o.name == skip) continue;
    std::string flag = o.name;
    std::replace(flag.begin(), flag.end(), '_', '-');
    std::visit(
        [&](auto* field) {
          using T = std::decay_t<decltype(*field)>;
          if constexpr (std::is_same_v<T, bool>) {
            if (o.companion.empty()) {
              sub->add_flag("--" + flag + ",!--no-" + flag, *field, o.help);
              return;
            }
            // --flag [VALUE]: on, and VALUE (if any) sets the companion option.
            const std::string companion = o.companion;
            sub->add_option_function<std::vector<std::string>>(
                   "--" + flag,
                   [field, companion, set](const std::vector<std::string>& v) {
                     *field = true;
                     if (!v.empty()) set.set(companion, v.front());
                   },
                   o.help + " (--" + flag + " VALUE also sets --" + companion + ")")
                ->expected(0, 1);
            sub->add_flag_callback(
                "--no-" + flag, [field] { *field = false; }, "no " + o.help);
          } else if constexpr (std::is_same_v<T, OptionSet::ChoiceField>) {
            // The callback keeps the field's parser alive: the set may be gone by parse time.
            const std::string what = "--" + flag;
            const std::shared_ptr<OptionSet::ChoiceField> choice = o.choice;
            sub->add_option_function<std::string>(
                   what, [choice, what](const std::string& v) { choice->set(v, what); }, o.help)
                ->default_str(field->get());
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

void bind_config(CLI::App* sub, ConfigBinding b) {
  const bool recipes = static_cast<bool>(b.apply_recipe);
  if (recipes)
    sub->add_option_function<std::string>(
        "--recipe", b.apply_recipe, "preset: " + b.recipes + " (--config and flags override it)");
  sub->add_option_function<std::string>(
      "--config",
      [apply = b.apply_yaml](const std::string& path) { apply(load_yaml_file(path), path); },
      "YAML file with these options (flags override it)");
  bind_options(sub, b.options, recipes ? "recipe" : "");
}

void write_result(const std::string& path, const json& result) {
  if (!path.empty()) write_json(path, result);
}

}  // namespace lpld::cli
