// Deterministic, portable random numbers for everything that must be replayed exactly:
// epoch orders, crops, flips and CutMix boxes (relabel and train must agree bit for bit,
// on any device and any libtorch version, so torch's generators are not used for them).
//
// A stream is identified by (seed, tag, a, b); `derive` mixes them with splitmix64.
// The generator is xoshiro256** seeded by splitmix64. Hand-written because no Debian
// library offers a small, specified, counter-addressable generator; the algorithm is
// documented in docs/label-store.md so other tools can regenerate the same numbers.
#pragma once
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace lpld {

inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Mixes a run seed with a purpose tag and up to two counters into a stream seed.
inline uint64_t derive_seed(uint64_t seed, uint64_t tag, uint64_t a = 0, uint64_t b = 0) {
  uint64_t x = seed;
  uint64_t h = splitmix64(x);
  x = h ^ tag;
  h = splitmix64(x);
  x = h ^ a;
  h = splitmix64(x);
  x = h ^ b;
  return splitmix64(x);
}

// Purpose tags (stable: changing one changes every stored label set).
enum RngTag : uint64_t {
  kTagEpochOrder = 1,
  kTagView = 2,
  kTagCutMix = 3,
  kTagRecoverInit = 4,
  kTagRecoverAug = 5,
  kTagPoolDraw = 6,
  kTagTrainOrder = 7,
  kTagTrainAug = 8,
  kTagSample = 9,
  kTagFallback = 10,
};

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t x = seed;
    for (auto& w : s_) w = splitmix64(x);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1), 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift, unbiased enough for n << 2^32).
  int64_t below(int64_t n) {
    return static_cast<int64_t>((static_cast<__uint128_t>(next()) * static_cast<uint64_t>(n)) >>
                                64);
  }
  // Uniform integer in [lo, hi] inclusive.
  int64_t range(int64_t lo, int64_t hi) { return lo + below(hi - lo + 1); }
  bool coin() { return (next() >> 63) != 0; }
  double normal() {
    // Box-Muller, one value per call (simple and exactly reproducible).
    double u1 = uniform();
    double u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Gamma(shape, 1) by Marsaglia-Tsang.
  double gamma(double shape) {
    if (shape < 1.0) return gamma(shape + 1.0) * std::pow(uniform() + 1e-300, 1.0 / shape);
    const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = normal(), v = 1.0 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      const double u = uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
      if (std::log(u + 1e-300) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
  }
  // Beta(a, b); Beta(1, 1) is uniform and is drawn directly.
  double beta(double a, double b) {
    if (a == 1.0 && b == 1.0) return uniform();
    const double x = gamma(a), y = gamma(b);
    return x / (x + y);
  }
  // Fisher-Yates permutation of 0..n-1.
  std::vector<int64_t> permutation(int64_t n) {
    std::vector<int64_t> p(static_cast<size_t>(n));
    std::iota(p.begin(), p.end(), 0);
    for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[below(i + 1)]);
    return p;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace lpld
