#include "core/options.h"

#include <sstream>

#include "core/error.h"

namespace lpld {
namespace {

template <typename T>
T parse_scalar(const std::string& name, const std::string& text);

template <>
int64_t parse_scalar<int64_t>(const std::string& name, const std::string& text) {
  try {
    size_t pos = 0;
    const int64_t v = std::stoll(text, &pos);
    if (pos == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(name + ": '" + text + "' is not an integer");
}
template <>
uint64_t parse_scalar<uint64_t>(const std::string& name, const std::string& text) {
  try {
    size_t pos = 0;
    if (!text.empty() && text[0] != '-') {
      const uint64_t v = std::stoull(text, &pos);
      if (pos == text.size()) return v;
    }
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(name + ": '" + text + "' is not a non-negative integer");
}
template <>
double parse_scalar<double>(const std::string& name, const std::string& text) {
  try {
    size_t pos = 0;
    const double v = std::stod(text, &pos);
    if (pos == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(name + ": '" + text + "' is not a number");
}
template <>
bool parse_scalar<bool>(const std::string& name, const std::string& text) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  throw std::invalid_argument(name + ": '" + text + "' is not true or false");
}
template <>
std::string parse_scalar<std::string>(const std::string&, const std::string& text) {
  return text;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

const OptionSet::Option* find(const std::vector<OptionSet::Option>& options,
                              const std::string& name) {
  for (const auto& o : options)
    if (o.name == name) return &o;
  return nullptr;
}

}  // namespace

void OptionSet::set(const std::string& name, const std::string& value) const {
  const Option* o = find(options_, name);
  check_arg(o != nullptr, name, "unknown option");
  std::visit(
      [&](auto* field) {
        using T = std::decay_t<decltype(*field)>;
        if constexpr (std::is_same_v<T, std::vector<double>> ||
                      std::is_same_v<T, std::vector<int64_t>> ||
                      std::is_same_v<T, std::vector<std::string>>) {
          field->clear();
          for (const auto& item : split(value))
            field->push_back(parse_scalar<typename T::value_type>(name, item));
        } else if constexpr (std::is_same_v<T, ChoiceField>) {
          field->set(value, name);
        } else {
          *field = parse_scalar<T>(name, value);
        }
      },
      o->target);
}

void OptionSet::apply_yaml(const YAML::Node& node, const std::string& where,
                           const std::vector<std::string>& skip) const {
  if (!node || node.IsNull()) return;
  check_arg(node.IsMap(), where, "expected a map of options");
  std::vector<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    check_arg(it->first.IsScalar(), where, "a key is not a plain name");
    const std::string key = it->first.Scalar();
    check_arg(std::find(seen.begin(), seen.end(), key) == seen.end(), where + ": " + key,
              "given twice");
    seen.push_back(key);
    if (std::find(skip.begin(), skip.end(), key) != skip.end()) continue;
    const Option* o = find(options_, key);
    if (o == nullptr) {
      std::string known;
      for (const auto& opt : options_) known += (known.empty() ? "" : ", ") + opt.name;
      throw std::invalid_argument(where + ": unknown key '" + key + "' (known: " + known + ")");
    }
    const YAML::Node v = it->second;  // a handle: `it->second` lives in a temporary
    const std::string name = where + ": " + key;
    std::string text;
    if (v.IsSequence()) {
      const bool is_list = std::visit(
          [](auto* f) {
            using T = std::decay_t<decltype(*f)>;
            return std::is_same_v<T, std::vector<double>> ||
                   std::is_same_v<T, std::vector<int64_t>> ||
                   std::is_same_v<T, std::vector<std::string>>;
          },
          o->target);
      check_arg(is_list, name, "expected a single value, got a list");
      for (const auto& item : v) {
        check_arg(item.IsScalar(), name, "list items must be plain values");
        text += (text.empty() ? "" : ",") + item.Scalar();
      }
    } else {
      check_arg(v.IsScalar(), name, "expected a value");
      text = v.Scalar();
    }
    try {
      set(key, text);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + ": " + e.what());
    }
  }
}

std::string recipe_for_image_size(int64_t image_size) {
  if (image_size <= 32) return "small";
  return image_size <= 64 ? "tiny" : "imagenet1k";
}

YAML::Node load_yaml_file(const std::string& path) {
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    fail_file(path, std::string("cannot read YAML: ") + e.what());
  }
}

void OptionSet::copy(const OptionSet& from, const std::string& name) const {
  const Option* to = find(options_, name);
  const Option* src = find(from.options_, name);
  check_arg(to != nullptr && src != nullptr && to->target.index() == src->target.index(), name,
            "not an option of both configs");
  std::visit(
      [&](auto* field) {
        using Ptr = std::decay_t<decltype(field)>;
        if constexpr (std::is_same_v<Ptr, ChoiceField*>)
          field->set(std::get<Ptr>(src->target)->get(), name);
        else
          *field = *std::get<Ptr>(src->target);
      },
      to->target);
}

json OptionSet::to_json() const {
  json j = json::object();
  for (const auto& o : options_)
    std::visit(
        [&](auto* f) {
          if constexpr (std::is_same_v<std::decay_t<decltype(*f)>, ChoiceField>)
            j[o.name] = f->get();
          else
            j[o.name] = *f;
        },
        o.target);
  return j;
}

}  // namespace lpld
