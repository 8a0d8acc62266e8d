// Each stage's options are declared once, in its Config's `declare(OptionSet&)`: name,
// help and the field it fills. The CLI turns the set into flags (name with '-' for '_'),
// the pipeline reads the same names from YAML (an unknown key is an error naming it), and
// every result file records the resolved values as JSON.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
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
  };

  template <typename T>
  OptionSet& add(const std::string& name, T* field, const std::string& help) {
    options_.push_back({name, help, Target(field)});
    return *this;
  }
  const std::vector<Option>& options() const { return options_; }

  // Sets fields from a YAML map; `where` names the map in errors (e.g. "demo.yaml: relabel").
  void apply_yaml(const YAML::Node& node, const std::string& where) const;
  // Sets one field from a string, as a flag would ("true"/"false" for bools, "a,b" lists).
  void set(const std::string& name, const std::string& value) const;
  json to_json() const;

 private:
  std::vector<Option> options_;
};

// Collects a config's declared options.
template <typename Config>
OptionSet options_of(Config& config) {
  OptionSet set;
  config.declare(set);
  return set;
}
template <typename Config>
json config_json(const Config& config) {
  Config copy = config;
  return options_of(copy).to_json();
}

}  // namespace lpld
