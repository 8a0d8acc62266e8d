// Each stage's options are declared once, in its Config's `declare(OptionSet&)`: name,
// help and the field it fills. The CLI turns the set into flags (name with '-' for '_'),
// the pipeline reads the same names from YAML (an unknown key is an error naming it), and
// every result file records the resolved values as JSON.
#pragma once
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "core/io.h"

namespace lpld {

class OptionSet {
 public:
  using Target =
      std::variant<int64_t*, uint64_t*, double*, bool*, std::string*, std::vector<double>*,
                   std::vector<int64_t>*, std::vector<std::string>*>;
  struct Option {
    std::string name, help;
    Target target;
    std::string companion;  // see value_sets
  };

  template <typename T>
  OptionSet& add(const std::string& name, T* field, const std::string& help) {
    options_.push_back({name, help, Target(field), ""});
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

}  // namespace lpld
