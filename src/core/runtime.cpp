#include "core/runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <torch/version.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "core/error.h"

namespace lpld {

torch::Device parse_device(const std::string& spec) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(spec);
  } catch (const std::exception&) {
    throw std::invalid_argument("--device: unknown device '" + spec + "' (use cpu, cuda, cuda:N)");
  }
  check_arg(device.is_cpu() || device.is_cuda(), "--device", "only cpu and cuda are supported");
  if (device.is_cuda()) {
    check_arg(torch::cuda::is_available(), "--device",
              "'" + spec + "' requested but this build of libtorch has no CUDA device available");
    check_arg(!device.has_index() || device.index() < static_cast<int>(torch::cuda::device_count()),
              "--device", "'" + spec + "' does not exist");
  }
  return device;
}

void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
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

int set_threads(int threads) {
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
  return "none loaded";
}

nlohmann::json runtime_info() {
  nlohmann::json j = {
      {"libtorch", TORCH_VERSION}, {"threads", torch::get_num_threads()}, {"blas", blas_name()}};
  if (auto get = blas_symbol<GetThreads>("openblas_get_num_threads")) j["blas_threads"] = get();
  return j;
}

}  // namespace lpld
