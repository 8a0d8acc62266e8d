#include "core/runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <torch/version.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "core/dist.h"
#include "core/error.h"

// jemalloc's settings, read by jemalloc before main (MALLOC_CONF in the environment overrides
// them; runtime_info records both). Why jemalloc at all: bench/results/allocator.md.
extern "C" {
__attribute__((used, visibility("default"))) const char* malloc_conf =
    "dirty_decay_ms:-1,muzzy_decay_ms:-1";
}

namespace lpld {

torch::Device parse_device(const std::string& spec) {
  const torch::Device device = resolve_device(spec, DistEnv::from_environment());
  if (device.is_cuda()) {
    check_arg(torch::cuda::is_available(), "--device",
              "'" + spec + "' requested but this build of libtorch has no CUDA device available");
    check_arg(!device.has_index() || device.index() < static_cast<int>(torch::cuda::device_count()),
              "--device", "'" + spec + "' does not exist");
  }
  return device;
}

namespace {
using MallCtl = int (*)(const char*, void*, size_t*, void*, size_t);
MallCtl jemalloc_ctl() { return reinterpret_cast<MallCtl>(dlsym(RTLD_DEFAULT, "mallctl")); }
template <typename T>
bool jemalloc_read(const char* name, T& value) {
  size_t size = sizeof value;
  const MallCtl ctl = jemalloc_ctl();
  return ctl != nullptr && ctl(name, &value, &size, nullptr, 0) == 0;
}
}  // namespace

void tune_allocator() {
  if (jemalloc_ctl() != nullptr) return;  // jemalloc is in use (below); these are glibc's knobs
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
}

nlohmann::json allocator_info() {
  const char* version = nullptr;
  if (!jemalloc_read("version", version)) return {{"name", "glibc"}};
  ssize_t dirty = 0, muzzy = 0;
  jemalloc_read("opt.dirty_decay_ms", dirty);
  jemalloc_read("opt.muzzy_decay_ms", muzzy);
  const char* env = std::getenv("MALLOC_CONF");
  return {{"name", "jemalloc"},
          {"version", version},
          {"dirty_decay_ms", dirty},
          {"muzzy_decay_ms", muzzy},
          {"malloc_conf_env", env ? env : ""}};
}

namespace {
// OpenBLAS's thread controls, when the libblas.so.3 behind libtorch is OpenBLAS.
using SetThreads = void (*)(int);
using GetThreads = int (*)();
template <typename F>
F blas_symbol(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}
}  // namespace

int threads_from_environment() {
  const char* omp = std::getenv("OMP_NUM_THREADS");
  const int n = omp ? std::atoi(omp) : 0;
  return n >= 1 && n <= 1024 ? n : 0;
}

int set_threads(int threads) {
  // the variable OpenMP programs honour (e.g. two processes sharing two cores: 1 each)
  if (threads <= 0) threads = threads_from_environment();
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
  // OpenBLAS runs on the calling thread unless OPENBLAS_NUM_THREADS says otherwise: lpld's
  // matrix products (the classifier heads) are small next to its convolutions, and idle
  // OpenBLAS workers spin (sched_yield) on the cores libtorch's OpenMP threads need; with
  // one BLAS worker per core, train at 1000 classes ran 1.8x slower (bench/results/scale.md).
  auto set = blas_symbol<SetThreads>("openblas_set_num_threads");
  if (set && !std::getenv("OPENBLAS_NUM_THREADS")) set(1);
  return threads;
}

std::string blas_name() {
  // The file libblas.so.3 resolved to (Debian's alternatives: /usr/lib/<arch>/blas/ for the
  // reference implementation, .../openblas-pthread/ or .../openblas-openmp/ for OpenBLAS).
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto at = line.find('/');
    if (at == std::string::npos || line.find("libblas.so") == std::string::npos) continue;
    const std::string path = line.substr(at);
    for (const char* kind : {"openblas-pthread", "openblas-openmp", "openblas-serial", "atlas",
                             "blis-pthread", "blis-openmp", "blis-serial", "mkl"})
      if (path.find(kind) != std::string::npos) return kind;
    if (path.find("/blas/") != std::string::npos) return "reference";
    return path;
  }
  // PyPI's wheels link MKL into libtorch itself: no libblas.so is loaded.
  return at::hasMKL() ? "mkl (in libtorch)" : "none loaded";
}

std::string version_text() {
  const nlohmann::json a = allocator_info();
  return "lpld " LPLD_VERSION "\nlibtorch " TORCH_VERSION "\nCUDA devices " +
         std::to_string(torch::cuda::device_count()) + "\nBLAS " + blas_name() + "\nallocator " +
         a["name"].get<std::string>() +
         (a.contains("version") ? " " + a["version"].get<std::string>() : std::string());
}

void set_deterministic(bool on) {
  // cuBLAS picks reduction orders by workspace unless it is fixed (NVIDIA's cuBLAS guide,
  // "Results reproducibility"); read when CUDA starts, so set before any CUDA call.
  if (on) setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  at::globalContext().setDeterministicAlgorithms(on, /*warn_only=*/false);
  at::globalContext().setDeterministicCuDNN(on);
  if (on) at::globalContext().setBenchmarkCuDNN(false);
}

nlohmann::json runtime_info() {
  nlohmann::json j = {{"libtorch", TORCH_VERSION},
                      {"cuda_devices", torch::cuda::device_count()},
                      {"deterministic", at::globalContext().deterministicAlgorithms()},
                      {"threads", torch::get_num_threads()},
                      {"blas", blas_name()},
                      {"allocator", allocator_info()}};
  if (auto get = blas_symbol<GetThreads>("openblas_get_num_threads")) j["blas_threads"] = get();
  return j;
}

}  // namespace lpld
