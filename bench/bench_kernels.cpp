// Micro-benchmarks of the compute every stage is made of (Google Benchmark):
//   - the teacher training step and forward of convnet-d3-w64 on 28 px (squeeze, relabel);
//   - the machine's conv throughput (forward + backward FLOP/s of a large 3x3 conv), the
//     ceiling the training throughput is compared against (bench/results/squeeze.md).
// Run: build/bench_kernels --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include "core/runtime.h"
#include "models/registry.h"

using namespace lpld;

static void BM_ConvNetTrainStep(benchmark::State& state) {
  set_threads(0);
  const int64_t batch = state.range(0);
  auto m = models::make_model({"convnet-d3-w64", 10, 1, 28});
  torch::optim::SGD opt(m->parameters(),
                        torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
  auto x = torch::randn({batch, 1, 28, 28});
  auto y = torch::randint(0, 10, {batch}, torch::kInt64);
  for (auto _ : state) {
    auto loss = torch::cross_entropy_loss(m->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  state.counters["img/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()),
                                               benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ConvNetTrainStep)
    ->Arg(20)
    ->Arg(128)
    ->Arg(256)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

static void BM_ConvNetForward(benchmark::State& state) {
  set_threads(0);
  const int64_t batch = state.range(0);
  auto m = models::make_model({"convnet-d3-w64", 10, 1, 28});
  m->eval();
  torch::NoGradGuard g;
  auto x = torch::randn({batch, 1, 28, 28});
  for (auto _ : state) benchmark::DoNotOptimize(m->forward(x));
  state.counters["img/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()),
                                               benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ConvNetForward)
    ->Arg(20)
    ->Arg(100)
    ->Arg(320)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// 64 -> 64 channels, 3x3, 28x28, batch 64: forward + input and weight gradients.
static void BM_ConvThroughput(benchmark::State& state) {
  set_threads(0);
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(64, 64, 3).padding(1));
  auto x = torch::randn({64, 64, 28, 28}, torch::requires_grad());
  for (auto _ : state) {
    auto y = conv->forward(x);
    y.sum().backward();
  }
  const double flops = 3.0 * 2.0 * 64 * 64 * 64 * 9 * 28 * 28;  // fwd + 2 backward convs
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ConvThroughput)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  tune_allocator();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
