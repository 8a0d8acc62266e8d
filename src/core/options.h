// Each stage's options are declared once, in its Config's `declare(OptionSet&)`: name,
// help and the field it fills. The CLI turns the set into flags (name with '-' for '_'),
// the pipeline reads the same names from YAML (an unknown key is an error naming it), and
// every result file records the resolved values as JSON.
#pragma once
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "core/choice.h"
#include "core/io.h"

namespace lpld {

class OptionSet {
 public:
  // An enum field (core/choice.h), read and written through its names.
  struct ChoiceField {
    std::function<void(const std::string& text, const std::string& what)> set;
    std::function<std::string()> get;
  };
  using Target =
      std::variant<int64_t*, uint64_t*, double*, bool*, std::string*, std::vector<double>*,
                   std::vector<int64_t>*, std::vector<std::string>*, ChoiceField*>;
  struct Option {
    std::string name, help;
    Target target;
    std::string companion;                // see value_sets
    std::shared_ptr<ChoiceField> choice;  // owns what a ChoiceField* target points to
  };

  // An enum field's help gets its choices appended: "help (a, b or c)".
  template <typename T>
  OptionSet& add(const std::string& name, T* field, const std::string& help) {
    if constexpr (std::is_enum_v<T>) {
      auto c = std::make_shared<ChoiceField>();
      c->set = [field](const std::string& text, const std::string& what) {
        *field = parse_choice<T>(text, what);
      };
      c->get = [field] { return choice_name(*field); };
      options_.push_back({name, help + " (" + choice_list<T>() + ")", Target(c.get()), "", c});
    } else {
      options_.push_back({name, help, Target(field), "", nullptr});
    }
    return *this;
  }
  // The last added option (a bool) may take a value that sets option `companion`:
  // `--cutmix 0.5` is `--cutmix --cutmix-alpha 0.5`; a bare `--cutmix` only switches it on.
  OptionSet& value_sets(const std::string& companion) {
    options_.back().companion = companion;
    return *this;
  }
  const std::vector<Option>& options() const { return options_; }

  // Sets fields from a YAML map; `where` names the map in errors (e.g. "demo.yaml: relabel").
  // Keys in `skip` are left to the caller; a key given twice is an error (YAML would keep the
  // last silently), so is an unknown key or a value that is not a plain scalar or list.
  void apply_yaml(const YAML::Node& node, const std::string& where,
                  const std::vector<std::string>& skip = {}) const;
  // Sets one field from a string, as a flag would ("true"/"false" for bools, "a,b" lists).
  void set(const std::string& name, const std::string& value) const;
  // Sets option `name` to its value in `from` (a set declared by the same config type).
  void copy(const OptionSet& from, const std::string& name) const;
  json to_json() const;

 private:
  std::vector<Option> options_;
};

// Reads a YAML file; a syntax error, a duplicate key or an alias cycle is a runtime_error
// naming the file.
YAML::Node load_yaml_file(const std::string& path);

// Configs with presets have `void apply_recipe(const std::string&)`.
template <typename C, typename = void>
struct has_recipe : std::false_type {};
template <typename C>
struct has_recipe<C, std::void_t<decltype(std::declval<C&>().apply_recipe(std::string()))>>
    : std::true_type {};

// Collects a config's declared options.
template <typename Config>
OptionSet options_of(Config& config) {
  OptionSet set;
  config.declare(set);
  return set;
}
// Applies a YAML map to a config: its `recipe` key first (configs with presets), then every
// other key, so the map's own values override the preset's. `where` names the map in errors.
template <typename Config>
void apply_yaml_config(Config& config, const YAML::Node& node, const std::string& where) {
  if (node && node.IsMap() && node["recipe"]) {
    if constexpr (has_recipe<Config>::value) {
      const YAML::Node recipe = node["recipe"];
      if (!recipe.IsScalar()) throw std::invalid_argument(where + ": recipe: expected a name");
      config.apply_recipe(recipe.Scalar());
      options_of(config).apply_yaml(node, where, {"recipe"});
      return;
    } else {
      throw std::invalid_argument(where + ": unknown key 'recipe'");
    }
  }
  options_of(config).apply_yaml(node, where);
}

template <typename Config>
json config_json(const Config& config) {
  Config copy = config;
  return options_of(copy).to_json();
}

// The recipe `--recipe auto` resolves to for a teacher of `image_size` px (recover, relabel and
// train; squeeze has teacher recipes of its own): the authors' settings for that scale
// (METHOD.md) -- small (our 28-32 px default, the ImageNet-1K recipe where it applies) up to
// 32 px, tiny up to 64 px, imagenet1k above.
std::string recipe_for_image_size(int64_t image_size);

// The options `config` sets away from its type's defaults (by a flag, a YAML key or a recipe),
// with their values: what a recipe picked for the data must keep, and what a stage that
// cannot use an option must refuse.
template <typename Config>
json options_set(const Config& config) {
  const json mine = config_json(config), defaults = config_json(Config{});
  json set = json::object();
  for (const auto& [key, value] : mine.items())
    if (value != defaults[key]) set[key] = value;
  return set;
}

// Applies recipe `name` to `config` except the options `config` sets away from their defaults
// (by a flag or a YAML key): a recipe picked for the data never overrides what was asked for.
// Returns those options as "name value, ..." ("" when none).
template <typename Config>
std::string apply_recipe_keeping_set(Config& config, const std::string& name) {
  Config requested = config;
  config.apply_recipe(name);
  const json recipe = config_json(config);
  const OptionSet to = options_of(config), from = options_of(requested);
  const json set = options_set(requested);  // (a named json: items() would outlive a temporary)
  std::string kept;
  for (const auto& [key, value] : set.items()) {
    if (key == "recipe" || recipe[key] == value) continue;
    to.copy(from, key);
    kept += (kept.empty() ? "" : ", ") + key + " " + value.dump();
  }
  return kept;
}

// `config` with `recipe: auto` resolved for a teacher of `image_size` px (other recipes:
// unchanged). `note`, when given, says what was resolved, for the stage's log.
template <typename Config>
Config resolve_recipe(const Config& config, int64_t image_size, const std::string& stage,
                      std::string* note = nullptr) {
  if (config.recipe != "auto") return config;
  Config r = config;
  const std::string name = recipe_for_image_size(image_size);
  const std::string kept = apply_recipe_keeping_set(r, name);
  if (note)
    *note = stage + ": --recipe auto: '" + name + "' for a " + std::to_string(image_size) +
            " px teacher" + (kept.empty() ? "" : ", with " + kept + " as set");
  return r;
}

}  // namespace lpld
