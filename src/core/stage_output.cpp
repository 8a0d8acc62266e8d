#include "core/stage_output.h"

#include <filesystem>
#include <stdexcept>

#include "core/runtime.h"

namespace lpld {

StageOutput::StageOutput(std::string stage, std::string path, Kind kind, std::string state,
                         json identity, Dist* dist)
    : stage_(std::move(stage)),
      path_(std::move(path)),
      state_path_(kind == Kind::kFile ? path_ + "." + state : path_ + "/" + state),
      kind_(kind),
      identity_(std::move(identity)),
      dist_(dist),
      writer_(!dist || dist->rank() == 0) {
  if (writer_) {
    if (kind_ == Kind::kFolder) make_dirs(path_);
    lock_ =
        FileLock::acquire_or_fail(kind_ == Kind::kFile ? path_ + ".lock" : path_ + "/.lock", path_);
  }
  if (dist_) dist_->barrier(stage_ + ": waiting for rank 0 to lock " + path_);
}

StageOutput::~StageOutput() = default;  // a lock still held is released (the run failed)

std::optional<json> StageOutput::finished() const {
  const std::string result_path = path_ + "/result.json";
  if (kind_ != Kind::kFolder || !file_exists(result_path)) return std::nullopt;
  json done = read_json(result_path);
  if (!done.is_object() || done.value("identity", json()) != identity_)
    throw std::invalid_argument("--out: " + path_ + " holds a finished " + stage_ +
                                " run with another config (" + result_path + ")");
  return done;
}

void StageOutput::publish(const std::function<void()>& write, json result) {
  if (writer_) {
    write();
    if (kind_ == Kind::kFolder && !result.is_null()) {
      result["identity"] = identity_;
      result["runtime"] = runtime_info();
      write_json(path_ + "/result.json", result);
    }
    std::filesystem::remove(state_path_);
    if (lock_) lock_->release_and_remove();
    lock_.reset();
  }
  if (dist_) dist_->barrier(stage_ + ": waiting for rank 0 to write " + path_);
}

}  // namespace lpld
