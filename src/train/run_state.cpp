#include "train/run_state.h"

#include "core/error.h"
#include "core/safetensors.h"
#include "engine/optimizer_state.h"

namespace lpld::train {

void save_resume_state(const std::string& path, const json& identity, models::ClassifierImpl& model,
                       torch::optim::Optimizer& optimizer, const ResumeState& s) {
  TensorFile f;
  for (const auto& p : model.named_parameters()) f.tensors["model." + p.key()] = p.value();
  for (const auto& b : model.named_buffers()) f.tensors["model." + b.key()] = b.value();
  for (auto& [k, t] : engine::optimizer_tensors(optimizer)) f.tensors[k] = t;
  f.metadata["identity"] = identity.dump();
  f.metadata["epochs_done"] = std::to_string(s.epochs_done);
  f.metadata["evals"] = s.evals.dump();
  f.metadata["steps"] = std::to_string(s.steps);
  f.metadata["train_seconds"] = fmt::format("{}", s.train_seconds);
  f.metadata["images_seen"] = std::to_string(s.images_seen);
  f.metadata["student_temperature"] = fmt::format("{}", s.student_temperature);
  save_safetensors(path, f);
}

ResumeState load_resume_state(const std::string& path, const json& identity,
                              models::ClassifierImpl& model, torch::optim::Optimizer& optimizer) {
  auto st = load_safetensors(path);
  check_file(st.metadata.count("identity") && json::parse(st.metadata["identity"]) == identity,
             path,
             "resume state belongs to another run (config differs); delete it or use a new --out");
  ResumeState s;
  try {
    torch::NoGradGuard ng;
    for (auto& p : model.named_parameters()) p.value().copy_(st.tensors.at("model." + p.key()));
    for (auto& b : model.named_buffers()) b.value().copy_(st.tensors.at("model." + b.key()));
    s.epochs_done = std::stoll(st.metadata.at("epochs_done"));
    s.steps = std::stoll(st.metadata.at("steps"));
    s.train_seconds = std::stod(st.metadata.at("train_seconds"));
    s.images_seen = std::stoll(st.metadata.at("images_seen"));
    s.evals = json::parse(st.metadata.at("evals"));
    if (st.metadata.count("student_temperature"))
      s.student_temperature = std::stod(st.metadata.at("student_temperature"));
  } catch (const std::exception& e) {
    fail_file(path, std::string("damaged resume state: ") + e.what());
  }
  engine::load_optimizer_tensors(optimizer, st.tensors, path);
  return s;
}

TrainResult finished_run(const json& done) {
  TrainResult r;
  r.top1 = done["top1"], r.top5 = done["top5"], r.seconds = done["seconds"];
  r.train_seconds = done["train_seconds"], r.images_per_second = done["images_per_second"];
  r.steps = done["steps"], r.pool_steps = done["pool_steps"], r.evals = done["evals"];
  r.rule_pool = done.value("rule_pool", json());
  r.recipe = done.value("recipe", std::string());
  r.input_wait_seconds = done.value("input_wait_seconds", 0.0);
  r.reused = true;
  return r;
}

}  // namespace lpld::train
