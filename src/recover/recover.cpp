// The story of recover (recover.h): bind the folder, plan what remains, optimize the whole
// run's groups that hold it, publish classes as they complete, write the manifest.
#include "recover/recover.h"

#include <set>

#include "core/clock.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/runtime.h"
#include "recover/folder.h"
#include "recover/rounds.h"

namespace lpld::recover {
namespace {

// The classes of [first, last) still to make: a class whose folder exists is complete. One
// process claims them (folder.h) and clears their staging left by a killed run; a rank of a
// distributed run takes no locks and stages nothing (rank 0 publishes from its unit files).
std::vector<int64_t> pending_classes(const RecoverConfig& config, const ClassFolders& folders,
                                     int64_t first, int64_t last, bool rank_of_many,
                                     std::vector<std::unique_ptr<FileLock>>& locks,
                                     Progress& progress) {
  std::vector<int64_t> pending;
  for (int64_t c = first; c < last; ++c)
    if (!folders.complete(c)) pending.push_back(c);
  if (rank_of_many) return pending;
  locks = claim_classes(config, folders, pending, progress);
  for (int64_t c : pending) folders.clear_staging(c);  // e.g. a killed write's temp file
  return pending;
}

// The ids of the pending classes' units still to make. Finished units of an interrupted run
// are kept in .units/ and restaged (their PNGs are a function of the seed and config, so they
// come out as they were); a rank of a distributed run leaves them to rank 0.
std::set<int64_t> units_to_make(const RecoverConfig& config, int64_t C, RunState& state,
                                bool rank_of_many) {
  std::set<int64_t> todo;
  for (const auto& u : plan_units(config, C, state.pending())) {
    const std::string path = unit_path(config.out, u.id);
    if (!file_exists(path))
      todo.insert(u.id);
    else if (!rank_of_many)
      state.add(u, load_unit(path));
  }
  return todo;
}

// Units per forward pass: on CPU small batches are efficient per image, so pack to ~32
// images; on a GPU fill up to ~256 (bench/recover measures this).
int64_t units_per_pass(const RecoverConfig& config, int64_t C, const torch::Device& device) {
  if (config.pack > 0) return config.pack;
  return std::max<int64_t>(1, (device.is_cuda() ? 256 : 32) / unit_batch(config, C));
}

// The whole run's groups that hold a unit to make; a distributed run deals them out, the
// n-th such group to rank n mod N.
std::vector<std::vector<Unit>> groups_to_optimize(const RecoverConfig& config, int64_t C,
                                                  int64_t pack, const std::set<int64_t>& todo,
                                                  const Dist* dist) {
  std::vector<std::vector<Unit>> groups;
  int64_t needed = 0;
  for (auto& g : whole_run_groups(config, C, pack)) {
    if (std::none_of(g.begin(), g.end(), [&](const Unit& u) { return todo.count(u.id) > 0; }))
      continue;
    if (!dist || needed % dist->world_size() == dist->rank()) groups.push_back(std::move(g));
    ++needed;
  }
  return groups;
}

// Loads the teacher (frozen, eval mode) and resolves the recipe from its resolution.
models::Checkpoint load_teacher(const RecoverConfig& requested, const torch::Device& device,
                                RecoverConfig& config, Progress& progress) {
  auto ck = models::load_checkpoint(requested.teacher, device);
  std::string note;
  config = resolve_recipe(requested, ck.meta.image_size, "recover", &note);
  if (!note.empty()) progress.message(note);
  for (auto& p : ck.model->parameters()) p.set_requires_grad(false);
  check_arg(!config.class_wise() || !ck.class_stats.empty(), "--teacher",
            config.teacher + " has no class-wise BN statistics (run squeeze with class stats)");
  return ck;
}

RecoverResult recover_part(const RecoverConfig& requested, Progress& progress, Dist* dist) {
  requested.validate();
  const auto start = Clock::now();
  const torch::Device device = parse_device(requested.device);
  RecoverConfig config;
  auto ck = load_teacher(requested, device, config, progress);
  const int64_t C = ck.meta.num_classes;
  const auto [first, last] = config.class_range(C);
  // A distributed run's rank 0 binds the folder first; the others then check it.
  if (dist && dist->rank() > 0) dist->barrier("recover: waiting for rank 0 to bind " + config.out);
  const json identity = bind_folder(config, hash_file(config.teacher));
  if (dist && dist->rank() == 0) dist->barrier("recover: waiting for the other ranks to start");
  const auto& names = ck.meta.class_names;
  ClassFolders folders(config.out, names);

  std::vector<std::unique_ptr<FileLock>> locks;
  RunState state(config, folders, C,
                 pending_classes(config, folders, first, last, dist != nullptr, locks, progress),
                 /*stage=*/dist == nullptr);
  const std::set<int64_t> todo = units_to_make(config, C, state, dist != nullptr);
  // Every rank plans from the same files: none may write a unit before all have planned.
  if (dist) dist->barrier("recover: waiting for the other ranks to plan");

  RecoverResult result;
  result.recipe = config.recipe;
  result.pack = units_per_pass(config, C, device);
  auto groups = groups_to_optimize(config, C, result.pack, todo, dist);
  const auto optimize_start = Clock::now();
  result.setup_seconds = seconds_since(start);
  const auto work = optimize_units(make_group_context(ck, config, device), std::move(groups), todo,
                                   state, names, result, progress);
  const double opt_seconds = seconds_since(optimize_start);
  result.iterations_per_second = opt_seconds > 0 ? work.unit_iterations / opt_seconds : 0;
  result.image_iterations_per_second = opt_seconds > 0 ? work.image_iterations / opt_seconds : 0;
  if (!dist) {
    state.publish_complete(names, result);  // units an interrupted run finished, none to run
    remove_unit_files(config, folders, first, last);
    write_manifest(config, ck.meta, identity, folders, state, first, last, result, progress);
  }
  result.seconds = seconds_since(start);
  return result;
}

// A rank of a distributed run (WORLD_SIZE > 1): every rank optimizes its share of the
// one-process run's groups into unit files; rank 0 then publishes the folder from them,
// exactly as it resumes an interrupted run (run_distributed reports a rank's failure to the
// others).
RecoverResult recover_rank(const RecoverConfig& config, Progress& progress, Dist& dist) {
  check_arg(config.classes.empty(), "--classes",
            "a distributed run (WORLD_SIZE > 1) divides the classes itself; leave it out");
  RecoverResult result = recover_part(config, progress, &dist);
  dist.barrier("recover: waiting for the other ranks' units");
  if (dist.rank() == 0) {
    const RecoverResult mine = result;
    result = recover_part(config, progress, nullptr);
    result.iterations_per_second = mine.iterations_per_second;
    result.image_iterations_per_second = mine.image_iterations_per_second;
    result.units_optimized += mine.units_optimized;
    result.seconds += mine.seconds;
  }
  dist.barrier("recover: waiting for rank 0 to publish " + config.out);
  return result;
}

}  // namespace

RecoverResult recover(const RecoverConfig& config, Progress& progress) {
  return run_distributed(config.device, [&](Dist* dist) {
    return dist ? recover_rank(config, progress, *dist) : recover_part(config, progress, nullptr);
  });
}

}  // namespace lpld::recover
