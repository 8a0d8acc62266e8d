// The life of one stage output, written once for every stage that owns a single file or
// folder (issue #29, one stage skeleton): rank 0 -- or the only process -- locks it, so a second
// process asked for the same output fails at once naming the holder; a finished output of the
// same run (its identity: what the stage's result depends on) is reused and another run's is
// an error; a killed run's state file is found where the stage resumes from; and publishing
// writes the output, its result.json and removes the state and the lock, on rank 0 alone,
// with the other ranks waiting for it. (Recover's per-class locks and relabel's .partial store
// are finer-grained lives of their own: recover/folder.h, labels/label_store.h.)
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/dist.h"
#include "core/io.h"
#include "core/lock.h"

namespace lpld {

class StageOutput {
 public:
  enum class Kind {
    kFile,    // `path` is one file: path.lock, path.<state>
    kFolder,  // `path` is a folder: path/.lock, path/<state>, path/result.json
  };
  // Claims `path` for a run of `stage` with `identity`. `state` names the resume state file
  // (see Kind). `dist` null: one process.
  StageOutput(std::string stage, std::string path, Kind kind, std::string state, json identity,
              Dist* dist);
  StageOutput(const StageOutput&) = delete;
  StageOutput& operator=(const StageOutput&) = delete;
  ~StageOutput();

  bool writer() const { return writer_; }  // this process writes (rank 0)
  const json& identity() const { return identity_; }
  const std::string& path() const { return path_; }
  const std::string& state_path() const { return state_path_; }
  // A folder's finished run: its result.json when it records this identity; nothing when there
  // is none; an invalid_argument naming --out when it holds another run's.
  std::optional<json> finished() const;
  // Publishes the output: rank 0 runs `write` (the output's own files, each written
  // atomically), writes `result` with the identity and runtime as result.json (a folder, when
  // `result` is not null), removes the state file and releases the lock; every rank returns
  // once it is done.
  void publish(const std::function<void()>& write, json result = nullptr);

 private:
  std::string stage_, path_, state_path_;
  Kind kind_;
  json identity_;
  Dist* dist_;
  bool writer_;
  std::unique_ptr<FileLock> lock_;
};

}  // namespace lpld
