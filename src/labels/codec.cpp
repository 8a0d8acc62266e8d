#include "labels/codec.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace lpld::labels {

const std::vector<LabelValuesFormat>& label_values_formats() {
  using V = LabelValues;
  static const std::vector<LabelValuesFormat> table = {
      {V::fp32, "fp32", 32, 0, false, torch::kFloat32},
      {V::fp16, "fp16", 16, 0, false, torch::kFloat16},
      {V::bf16, "bf16", 16, 0, false, torch::kBFloat16},
      {V::int8, "int8", 8, 4, false, torch::ScalarType::Undefined},
      {V::int4, "int4", 4, 4, false, torch::ScalarType::Undefined},
      {V::int8_max, "int8-max", 8, 1, true, torch::ScalarType::Undefined},
      {V::int4_max, "int4-max", 4, 1, true, torch::ScalarType::Undefined},
      {V::int2_max, "int2-max", 2, 1, true, torch::ScalarType::Undefined},
  };
  return table;
}

const LabelValuesFormat& format_of(LabelValues values) {
  for (const auto& f : label_values_formats())
    if (f.values == values) return f;
  throw std::logic_error("label values without a format");
}

const std::vector<Choice<LabelValues>>& choices(LabelValues) {
  static const std::vector<Choice<LabelValues>> table = [] {
    std::vector<Choice<LabelValues>> t;
    for (const auto& f : label_values_formats()) t.push_back({f.values, f.name});
    return t;
  }();
  return table;
}

void LabelCodec::validate() const {
  check_arg(topk >= 0, "--topk", "must be >= 0 (0: every class)");
}

namespace {
// The 256 scales of a scale byte, growing with the code (the exponent is the high nibble).
const std::array<float, 256>& max_relative_scales() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c)
      t[c] = std::ldexp(static_cast<float>(16 + (c & 0xF)), (c >> 4) - 12);
    return t;
  }();
  return table;
}
}  // namespace

float max_relative_scale(uint8_t code) { return max_relative_scales()[code]; }

uint8_t max_relative_code(float scale) {
  const auto& t = max_relative_scales();
  const auto at = std::lower_bound(t.begin(), t.end(), scale);
  return static_cast<uint8_t>(at == t.end() ? 255 : at - t.begin());
}

int64_t LabelCodec::kept(int64_t classes) const {
  return topk > 0 ? std::min(topk, classes) : classes;
}

int64_t LabelCodec::value_bytes(int64_t classes) const {
  return (kept(classes) * bits() + 7) / 8;  // int4: two values a byte
}

int64_t LabelCodec::row_bytes(int64_t classes) const {
  return value_bytes(classes) + param_bytes() +
         (indexed(classes) ? kept(classes) * index_bytes(classes) : 0);
}

namespace {
// A byte view [n, bytes] of a row-major tensor [n, m] of any dtype.
torch::Tensor bytes_of(const torch::Tensor& t) {
  return t.contiguous().view(torch::kUInt8).view({t.size(0), -1});
}

// int8 / int4 / int2 rows of x [n, k] (float32, contiguous, CPU): the packed values (int4: two
// a byte, the even one in the low nibble; int2: four, the first in the lowest bits), then the scale
// and offset as fp16, or (int8-max / int4-max) the levels below the row's maximum and the scale
// byte (codec.h). Plain loops, not tensor ops: this runs on relabel's writer thread once per step,
// where a dozen small ops cost more than their arithmetic and held up the forward (a quantized
// relabel was 3x slower than an fp16 one). The float32 operations are the tensor form's (x - lo) /
// scale rounded half to even, so the bytes are the same.
torch::Tensor quantize_rows(const torch::Tensor& x, const LabelCodec& codec, int64_t value_bytes) {
  const int64_t n = x.size(0), k = x.size(1), row_bytes = value_bytes + codec.param_bytes();
  const int bits = codec.bits();
  const bool max_relative = codec.max_relative();
  const float levels = static_cast<float>((1 << bits) - 1);
  auto out = torch::zeros({n, row_bytes}, torch::kUInt8);
  const float* in = x.data_ptr<float>();
  uint8_t* rows = out.data_ptr<uint8_t>();
  for (int64_t r = 0; r < n; ++r) {
    const float* row = in + r * k;
    uint8_t* dst = rows + r * row_bytes;
    const auto [lo_at, hi_at] = std::minmax_element(row, row + k);
    const float lo = *lo_at, hi = *hi_at;
    float scale = hi > lo ? (hi - lo) / levels : 1.f;
    uint8_t code = 0;
    if (max_relative) code = max_relative_code(scale), scale = max_relative_scale(code);
    for (int64_t j = 0; j < k; ++j) {
      const float d = max_relative ? hi - row[j] : row[j] - lo;
      const float q = std::min(std::max(std::nearbyint(d / scale), 0.f), levels);
      const auto v = static_cast<uint8_t>(q);
      // 8 / bits values a byte, the first in the lowest bits
      dst[j * bits / 8] |= static_cast<uint8_t>(v << ((j * bits) % 8));
    }
    if (max_relative) {
      dst[value_bytes] = code;
    } else {
      const c10::Half params[2] = {c10::Half(scale), c10::Half(lo)};
      std::memcpy(dst + value_bytes, params, sizeof params);
    }
  }
  return out;
}
}  // namespace

std::string LabelCodec::encode(const torch::Tensor& logits) const {
  const int64_t C = logits.size(1), k = kept(C);
  torch::Tensor x = logits.detach().to(torch::kCPU).to(torch::kFloat32).contiguous();
  std::vector<torch::Tensor> parts;  // each [n, bytes], concatenated into rows
  torch::Tensor idx;
  if (k < C) std::tie(x, idx) = x.topk(k, 1);  // the largest first
  if (!quantized()) {
    parts.push_back(bytes_of(x.to(format_of(values).type)));
  } else {
    parts.push_back(quantize_rows(x.contiguous(), *this, value_bytes(C)));
  }
  if (k < C)  // uint16 (as its int16 bit pattern) or uint32
    parts.push_back(bytes_of(index_bytes(C) == 2
                                 ? idx.bitwise_and(0xFFFF).to(torch::kInt32).to(torch::kInt16)
                                 : idx.to(torch::kInt32)));
  auto rows = torch::cat(parts, 1).contiguous();
  TORCH_CHECK(rows.size(1) == row_bytes(C), "label codec: row size mismatch");
  return std::string(static_cast<const char*>(rows.data_ptr()), static_cast<size_t>(rows.numel()));
}

LabelCodec::Rows LabelCodec::decode(const char* data, int64_t n, int64_t C) const {
  const int64_t k = kept(C), vb = value_bytes(C), pb = param_bytes(), rb = row_bytes(C);
  auto raw = torch::from_blob(const_cast<char*>(data), {n, rb}, torch::kUInt8);
  // (a fresh tensor: a dtype view needs zero offset and row strides the element size divides)
  auto column = [&](int64_t from, int64_t bytes) {
    return torch::empty({n, bytes}, torch::kUInt8).copy_(raw.narrow(1, from, bytes));
  };
  Rows rows;
  if (!quantized()) {
    rows.values = column(0, vb).view(format_of(values).type).view({n, k}).to(torch::kFloat32);
  } else {
    auto q = column(0, vb);
    if (bits() < 8) {  // 8 / bits values a byte, the first in the lowest bits
      std::vector<torch::Tensor> parts;
      for (int shift = 0; shift < 8; shift += bits())
        parts.push_back(q.__rshift__(shift).bitwise_and((1 << bits()) - 1));
      q = torch::stack(parts, 2).view({n, -1}).narrow(1, 0, k);
    }
    if (max_relative()) {
      const auto& t = max_relative_scales();
      const auto table = torch::from_blob(const_cast<float*>(t.data()), {256}, torch::kFloat32);
      const auto scale = table.index_select(0, column(vb, 1).view({n}).to(torch::kLong));
      rows.values = -(scale.view({n, 1}) * q.to(torch::kFloat32));
    } else {
      auto params = column(vb, pb).view(torch::kFloat16).view({n, 2}).to(torch::kFloat32);
      rows.values = params.narrow(1, 1, 1) + params.narrow(1, 0, 1) * q.to(torch::kFloat32);
    }
  }
  if (k < C) {
    auto ix = column(vb + pb, rb - vb - pb);
    rows.indices = index_bytes(C) == 2
                       ? ix.view(torch::kInt16).view({n, k}).to(torch::kInt64).bitwise_and(0xFFFF)
                       : ix.view(torch::kInt32).view({n, k}).to(torch::kInt64);
  }
  return rows;
}

torch::Tensor teacher_probs(const LabelCodec::Rows& rows, int64_t classes, double T) {
  auto p = torch::softmax(rows.values / T, 1);
  if (!rows.indices.defined()) return p;
  return torch::zeros({p.size(0), classes}, p.options())
      .scatter_(1, rows.indices.to(p.device()), p);
}

}  // namespace lpld::labels
