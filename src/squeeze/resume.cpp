#include "squeeze/resume.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "core/error.h"
#include "core/safetensors.h"

namespace lpld::squeeze {

void save_squeeze_state(const std::string& path, const json& identity,
                        models::ClassifierImpl& model, const SqueezeState& s) {
  TensorFile f;
  for (const auto& p : model.named_parameters()) f.tensors["model." + p.key()] = p.value();
  for (const auto& b : model.named_buffers()) f.tensors["model." + b.key()] = b.value();
  for (const auto& [k, t] : s.optimizer) f.tensors[k] = t;
  for (const auto& [k, t] : s.stats) f.tensors["stats." + k] = t;
  f.metadata["identity"] = identity.dump();
  f.metadata["state"] = json{{"phase", s.phase},
                             {"epochs_done", s.epochs_done},
                             {"step", s.step},
                             {"stats_batches", s.stats_batches},
                             {"train_images", s.train_images},
                             {"train_seconds", s.train_seconds},
                             {"step_seconds", s.step_seconds},
                             {"evaluated", s.eval.has_value()},
                             {"top1", s.eval ? s.eval->top1 : 0.0},
                             {"top5", s.eval ? s.eval->top5 : 0.0},
                             {"eval_seconds", s.eval ? s.eval->seconds : 0.0}}
                            .dump();
  save_safetensors(path, f);
}

std::optional<SqueezeState> load_squeeze_state(const std::string& path, const json& identity,
                                               models::ClassifierImpl& model) {
  if (!file_exists(path)) return std::nullopt;
  auto f = load_safetensors(path);
  if (!f.metadata.count("identity") || json::parse(f.metadata["identity"]) != identity) {
    spdlog::warn("{}: resume state of another squeeze config: starting over", path);
    std::filesystem::remove(path);
    return std::nullopt;
  }
  SqueezeState s;
  try {
    const json j = json::parse(f.metadata.at("state"));
    s.phase = j.at("phase"), s.epochs_done = j.at("epochs_done"), s.step = j.at("step");
    s.stats_batches = j.at("stats_batches"), s.train_images = j.at("train_images");
    s.train_seconds = j.at("train_seconds"), s.step_seconds = j.at("step_seconds");
    if (j.value("evaluated", false)) {  // (states of lpld before 2026-11-22 lack it: evaluate)
      s.eval.emplace();
      s.eval->top1 = j.at("top1"), s.eval->top5 = j.at("top5");
      s.eval->seconds = j.at("eval_seconds");
    }
    torch::NoGradGuard ng;
    for (auto& p : model.named_parameters()) p.value().copy_(f.tensors.at("model." + p.key()));
    for (auto& b : model.named_buffers()) b.value().copy_(f.tensors.at("model." + b.key()));
  } catch (const std::exception& e) {
    fail_file(path, std::string("damaged resume state (delete it to start over): ") + e.what());
  }
  for (const auto& [k, t] : f.tensors) {
    if (k.rfind("opt.", 0) == 0) s.optimizer[k] = t;
    if (k.rfind("stats.", 0) == 0) s.stats[k.substr(6)] = t;
  }
  return s;
}

}  // namespace lpld::squeeze
