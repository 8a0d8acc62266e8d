#include "core/runtime.h"

#include <malloc.h>

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

int set_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
  return threads;
}

}  // namespace lpld
