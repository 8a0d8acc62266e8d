// Several processes on PyTorch's distributed layer (c10d), with torchrun's conventions: the
// environment variables RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT name a
// process's place and the TCPStore of the rendezvous (served by rank 0); a Gloo process
// group carries the collectives. Never a home-made protocol: the store and the group are
// libtorch's. `lpld launch -n N -- <stage ...>` starts N such processes on one machine.
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace lpld {

struct DistEnv {
  int64_t rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  // Seconds to wait for every rank at the rendezvous (LPLD_RENDEZVOUS_TIMEOUT, default 300).
  int64_t rendezvous_seconds = 300;

  // From the environment; one process when WORLD_SIZE is unset. A bad value is an error
  // naming the variable.
  static DistEnv from_environment();
  bool distributed() const { return world_size > 1; }
  std::string where() const;  // "rank R of N (store ADDR:PORT)"
};

// The device a process computes on, from --device and torchrun's environment: in a
// distributed run, "cuda" is cuda:LOCAL_RANK (one GPU per process, as torchrun intends) and
// "cuda:N" other than LOCAL_RANK is an error naming --device (ranks sharing a GPU would
// serialize on it and NCCL refuses it). Availability is not checked here (runtime.h is).
torch::Device resolve_device(const std::string& spec, const DistEnv& env);

// A TCP port free on 127.0.0.1 now (the kernel's choice), for a one-machine rendezvous.
int free_local_port();

// One process's membership of the group, on the process's device: Gloo for the CPU, NCCL for
// CUDA (where the build has it: LPLD_WITH_NCCL), whose collectives take device tensors as
// they are. Collectives wait as long as the slowest rank's
// work (a stage's barrier may wait hours) but fail at once when a peer's connection drops:
// a rank that failed records its message in the store first, so the others can name it.
class Dist {
 public:
  explicit Dist(const DistEnv& env, const torch::Device& device = torch::kCPU);
  ~Dist();
  const DistEnv& env() const { return env_; }
  int64_t rank() const { return env_.rank; }
  int64_t world_size() const { return env_.world_size; }

  // Every rank reaches this point, or an error says which failed and why.
  void barrier(const std::string& what);
  // Sums each tensor over the ranks, in place; every rank ends with the same values. With
  // Gloo, tensors off the CPU travel through a CPU copy; NCCL takes device tensors as they are.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what);
  // Replaces each tensor by rank 0's, in place.
  void broadcast_from_rank0(std::vector<torch::Tensor>& tensors, const std::string& what);
  // Records this rank's failure for the others (best effort: the store may be gone).
  void report_failure(const std::string& message) noexcept;

 private:
  std::string peer_failure() const;  // the first failure a rank recorded, or ""
  [[noreturn]] void fail_collective(const std::string& what, const std::exception& e) const;
  struct Impl;  // the c10d TCPStore and ProcessGroupGloo (their headers stay in dist.cpp)
  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lpld

namespace lpld {

// Runs `part` on every rank of `dist`: a rank whose part throws records the message for the
// others (who then stop at their next collective naming it) and rethrows.
template <typename F>
auto run_rank(Dist& dist, F&& part) -> decltype(part()) {
  try {
    return part();
  } catch (const std::exception& e) {
    dist.report_failure(e.what());
    throw;
  }
}

// A stage's entry: `part(nullptr)` as one process, or, under torchrun's environment
// (WORLD_SIZE > 1), `part(&dist)` as this process's rank of the group, through run_rank.
// `device_spec` is the stage's --device: the group's backend follows it (Gloo or NCCL).
template <typename F>
auto run_distributed(const std::string& device_spec, F&& part)
    -> decltype(part(static_cast<Dist*>(nullptr))) {
  const DistEnv env = DistEnv::from_environment();
  if (!env.distributed()) return part(nullptr);
  Dist dist(env, resolve_device(device_spec, env));
  return run_rank(dist, [&] { return part(&dist); });
}

}  // namespace lpld
