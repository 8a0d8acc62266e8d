#include "core/dist.h"

#include <fmt/format.h>
#ifdef LPLD_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef LPLD_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

#include "core/error.h"

namespace lpld {

namespace {

int64_t env_int(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw std::invalid_argument(
        fmt::format("environment variable {}: expected an integer in "
                    "[{}, {}], got '{}'",
                    name, lo, hi, v));
  return x;
}

// A collective may wait for the slowest rank's whole stage (recover of a large class range
// takes hours); a dead peer still fails it at once, since its connection drops.
[[maybe_unused]] constexpr std::chrono::hours kCollectiveTimeout{24 * 7};

[[maybe_unused]] std::string as_string(const std::vector<uint8_t>& v) {
  return std::string(v.begin(), v.end());
}
[[maybe_unused]] std::vector<uint8_t> as_bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

}  // namespace

DistEnv DistEnv::from_environment() {
  DistEnv e;
  e.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  e.rank = env_int("RANK", 0, 0, e.world_size - 1);
  e.local_rank = env_int("LOCAL_RANK", e.rank, 0, 1 << 20);
  e.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  e.rendezvous_seconds = env_int("LPLD_RENDEZVOUS_TIMEOUT", 300, 1, 1 << 24);
  if (const char* a = std::getenv("MASTER_ADDR"); a != nullptr && *a != '\0') e.master_addr = a;
  return e;
}

int free_local_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  if (fd >= 0) close(fd);
  if (!ok) throw std::runtime_error("cannot find a free TCP port on 127.0.0.1");
  return ntohs(a.sin_port);
}

torch::Device resolve_device(const std::string& spec, const DistEnv& env) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(spec);
  } catch (const std::exception&) {
    throw std::invalid_argument("--device: unknown device '" + spec + "' (use cpu, cuda, cuda:N)");
  }
  check_arg(device.is_cpu() || device.is_cuda(), "--device", "only cpu and cuda are supported");
  if (!device.is_cuda() || !env.distributed()) return device;
  if (!device.has_index()) return {torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank)};
  check_arg(device.index() == env.local_rank, "--device",
            fmt::format("'{}' in a distributed run: {} has LOCAL_RANK {}, so its GPU is cuda:{} "
                        "(pass --device cuda)",
                        spec, env.where(), env.local_rank, env.local_rank));
  return device;
}

std::string DistEnv::where() const {
  return fmt::format("rank {} of {} (store {}:{})", rank, world_size, master_addr, master_port);
}

#ifdef LPLD_WITH_GLOO

struct Dist::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;  // on the CPU
#ifdef LPLD_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;  // on CUDA
#endif
  torch::Device device{torch::kCPU};

  // Runs `op` on the group of this process's device, with each tensor where that group wants
  // it (Gloo: contiguous on the CPU; NCCL: contiguous on the device), copied back if moved.
  template <typename Op>
  void collective(std::vector<torch::Tensor>& tensors, Op&& op) {
    const torch::Device where = nccl_active() ? device : torch::Device(torch::kCPU);
    std::vector<torch::Tensor> moved;
    moved.reserve(tensors.size());
    for (auto& t : tensors)
      moved.push_back(t.device() == where && t.is_contiguous() ? t : t.to(where).contiguous());
    for (auto& t : moved) {
      std::vector<torch::Tensor> one{t};
#ifdef LPLD_WITH_NCCL
      if (nccl_active()) {
        op(*nccl, one)->wait();
        continue;
      }
#endif
      op(*group, one)->wait();
    }
    for (size_t i = 0; i < tensors.size(); ++i)
      if (!moved[i].is_same(tensors[i])) tensors[i].copy_(moved[i]);
  }
  bool nccl_active() const {
#ifdef LPLD_WITH_NCCL
    return static_cast<bool>(nccl);
#else
    return false;
#endif
  }
};

namespace {
// NCCL's group on `device` (the store already set up), or an error saying why there is none.
#ifdef LPLD_WITH_NCCL
c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                      const DistEnv& env,
                                                      const torch::Device& device) {
  c10::cuda::set_device(device.index());
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = kCollectiveTimeout;
  // Its own key space in the store the Gloo group also uses (as torch.distributed prefixes
  // each backend's keys).
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("lpld-nccl", store);
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, static_cast<int>(env.rank),
                                                     static_cast<int>(env.world_size), options);
}
#endif
}  // namespace

Dist::Dist(const DistEnv& env, const torch::Device& device)
    : env_(env), impl_(std::make_unique<Impl>()) {
  impl_->device = device;
#ifndef LPLD_WITH_NCCL
  check_arg(!device.is_cuda(), "--device",
            env.where() +
                ": this lpld was built without NCCL (a libtorch with CUDA and nccl.h), "
                "so a distributed run computes on the CPU only");
#endif
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env.master_port);
    o.isServer = env.rank == 0;
    o.numWorkers = static_cast<size_t>(env.world_size);
    o.waitWorkers = true;
    o.timeout = std::chrono::seconds(env.rendezvous_seconds);
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    auto options = c10d::ProcessGroupGloo::Options::create(kCollectiveTimeout);
    const bool loopback = env.master_addr == "127.0.0.1" || env.master_addr == "localhost";
    options->devices.push_back(loopback
                                   ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                   : c10d::ProcessGroupGloo::createDefaultDevice());
    options->threads = 2;
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        impl_->store, static_cast<int>(env.rank), static_cast<int>(env.world_size), options);
#ifdef LPLD_WITH_NCCL
    if (device.is_cuda()) impl_->nccl = nccl_group(impl_->store, env, device);
#endif
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format(
        "{}: the rendezvous failed within {} s (is rank 0 running, and {}:{} reachable?): {}",
        env.where(), env.rendezvous_seconds, env.master_addr, env.master_port, e.what()));
  }
}

Dist::~Dist() = default;

std::string Dist::peer_failure() const {
  try {
    if (impl_->store->check({"lpld/failed"})) return as_string(impl_->store->get("lpld/failed"));
  } catch (const std::exception&) {
    return fmt::format("rank 0 is gone (the store at {}:{} no longer answers)", env_.master_addr,
                       env_.master_port);
  }
  return "";
}

void Dist::fail_collective(const std::string& what, const std::exception& e) const {
  const std::string peer = peer_failure();
  throw std::runtime_error(
      fmt::format("{}: {}: {}", env_.where(), what,
                  peer.empty() ? "a peer process stopped: " + std::string(e.what()) : peer));
}

void Dist::barrier(const std::string& what) {
  try {
    c10d::BarrierOptions o;
    o.timeout = kCollectiveTimeout;
    // On Gloo even in a CUDA run: a barrier carries no tensor, and Gloo's needs no device.
    impl_->group->barrier(o)->wait();
  } catch (const std::exception& e) {
    fail_collective(what, e);
  }
}

void Dist::all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what) {
  try {
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = kCollectiveTimeout;
    impl_->collective(tensors, [&](auto& group, auto& t) { return group.allreduce(t, o); });
  } catch (const std::exception& e) {
    fail_collective(what, e);
  }
}

void Dist::broadcast_from_rank0(std::vector<torch::Tensor>& tensors, const std::string& what) {
  try {
    c10d::BroadcastOptions o;
    o.rootRank = 0;
    o.timeout = kCollectiveTimeout;
    impl_->collective(tensors, [&](auto& group, auto& t) { return group.broadcast(t, o); });
  } catch (const std::exception& e) {
    fail_collective(what, e);
  }
}

void Dist::report_failure(const std::string& message) noexcept {
  try {
    const std::string m = fmt::format("rank {} failed: {}", env_.rank, message);
    impl_->store->compareSet("lpld/failed", {}, as_bytes(m));  // the first failure wins
  } catch (...) {
  }
}

#else  // built without Gloo's headers (CMakeLists.txt)

struct Dist::Impl {};

Dist::Dist(const DistEnv& env, const torch::Device&) : env_(env) {
  throw std::runtime_error(env.where() +
                           ": this lpld was built without Gloo (libgloo-dev), so it runs as "
                           "one process only; unset WORLD_SIZE or rebuild with Gloo's headers");
}
Dist::~Dist() = default;
std::string Dist::peer_failure() const { return ""; }
void Dist::fail_collective(const std::string&, const std::exception& e) const {
  throw std::runtime_error(e.what());
}
void Dist::barrier(const std::string&) {}
void Dist::all_reduce_sum(std::vector<torch::Tensor>&, const std::string&) {}
void Dist::broadcast_from_rank0(std::vector<torch::Tensor>&, const std::string&) {}
void Dist::report_failure(const std::string&) noexcept {}

#endif

}  // namespace lpld
