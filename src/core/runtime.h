// Device and thread settings shared by every stage.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

namespace lpld {

// Parses "cpu", "cuda" or "cuda:N" (under torchrun, "cuda" is cuda:LOCAL_RANK: dist.h's
// resolve_device); throws invalid_argument naming --device when the device is unknown or not
// available in this build.
torch::Device parse_device(const std::string& spec);

// Sets libtorch's intra-op threads: `threads` <= 0 means OMP_NUM_THREADS when set, else all
// cores (Debian's libtorch defaults to one). An OpenBLAS behind libtorch gets one thread (the
// caller's) unless OPENBLAS_NUM_THREADS is set, so its spinning workers do not take the cores from
// the OpenMP regions. Returns the number in use.
int set_threads(int threads);
// OMP_NUM_THREADS when it is a thread count in --threads' range 1..1024 (OpenMP's lists "4,2":
// the first), else 0.
int threads_from_environment();

// `--deterministic`: PyTorch's deterministic algorithms (an op without a deterministic kernel
// is then an error naming it), cuDNN's deterministic convolutions without autotuning, and a
// fixed cuBLAS workspace (CUBLAS_WORKSPACE_CONFIG, unless set). What it promises and costs:
// README "CUDA and mixed precision". The CPU kernels lpld uses are deterministic already.
void set_deterministic(bool on);

// What computed a result, as every result records it: libtorch's version, its threads, and
// whether deterministic algorithms were on, the BLAS library libtorch's matrix products go to (the
// system's libblas.so.3: Debian's reference BLAS or OpenBLAS, which differ in the last bits of some
// results) with its threads.
nlohmann::json runtime_info();
// The heap allocator in use, with its settings: {"name": "jemalloc", "version", the decay
// times, MALLOC_CONF} or {"name": "glibc"}.
nlohmann::json allocator_info();
// `lpld --version`: lpld's version, then libtorch's, CUDA devices, BLAS and allocator.
std::string version_text();
// Just the BLAS library's name ("openblas-pthread", "openblas-openmp", "reference", ...).
std::string blas_name();

// Keeps tensor-sized allocations on the heap. glibc serves blocks above 128 KB (up to
// 32 MB, adaptively) with fresh mmap()s and unmaps them at free(): every activation
// tensor of a step then costs page faults (measured: 17 of 27 s of a student run spent
// in the kernel). Call once at program start.
void tune_allocator();

}  // namespace lpld
