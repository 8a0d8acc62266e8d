// recover's output folder beyond the class folders (class_folders.h): recover.json binding
// it to one config and teacher, the locks that let processes share it (--classes), the unit
// files of work in progress (.units/), and manifest.json over every complete class.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/lock.h"
#include "core/progress.h"
#include "models/checkpoint.h"
#include "recover/class_folders.h"
#include "recover/recover.h"
#include "recover/run_state.h"

namespace lpld::recover {

// The folder is bound to one config and teacher (recover.json): another one is an error,
// not a mix. Returns the identity.
json bind_folder(const RecoverConfig& config, const std::string& teacher_hash);

// Locks what this process will make, so processes sharing the folder never make the same
// class: class mode takes each pending class whose lock is free (a class another process
// holds is left to it, and named); mixed mode, whose batches hold every class, takes the
// folder or fails at once naming the holder. `pending` keeps the classes taken.
std::vector<std::unique_ptr<FileLock>> claim_classes(const RecoverConfig& config,
                                                     const ClassFolders& folders,
                                                     std::vector<int64_t>& pending,
                                                     Progress& progress);

// Removes the unit files of the classes [first, last) (also those an interrupted run completed
// but did not clean up) once every class they hold is complete: processes sharing the folder
// (--classes) keep theirs, and a mixed batch cut by the range stays for the range that holds
// its other classes.
void remove_unit_files(const RecoverConfig& config, const ClassFolders& folders, int64_t first,
                       int64_t last);

// Fills the result's per-class records and teacher top-1 for the classes [first, last), and
// writes manifest.json over every complete class in the folder (several processes may share
// it); removes .units/ and .locks/ once every class is complete.
void write_manifest(const RecoverConfig& config, const models::ModelMeta& meta,
                    const json& identity, const ClassFolders& folders, const RunState& state,
                    int64_t first, int64_t last, RecoverResult& result, Progress& progress);

}  // namespace lpld::recover
