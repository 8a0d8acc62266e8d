#include "labels/codec.h"

#include <cstring>

#include "core/error.h"

namespace lpld::labels {

void LabelCodec::validate() const {
  check_arg(topk >= 0, "--topk", "must be >= 0 (0: every class)");
  check_arg(values == "fp32" || values == "fp16" || values == "bf16" || values == "int8" ||
                values == "int4",
            "--logits", "must be fp32, fp16, bf16, int8 or int4, not '" + values + "'");
}

int64_t LabelCodec::kept(int64_t classes) const {
  return topk > 0 ? std::min(topk, classes) : classes;
}

int64_t LabelCodec::value_bytes(int64_t classes) const {
  const int64_t k = kept(classes);
  if (values == "fp32") return 4 * k;
  if (values == "int8") return k;
  if (values == "int4") return (k + 1) / 2;
  return 2 * k;
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
}  // namespace

std::string LabelCodec::encode(const torch::Tensor& logits) const {
  const int64_t n = logits.size(0), C = logits.size(1), k = kept(C);
  torch::Tensor x = logits.detach().to(torch::kCPU).to(torch::kFloat32).contiguous();
  std::vector<torch::Tensor> parts;  // each [n, bytes], concatenated into rows
  torch::Tensor idx;
  if (k < C) std::tie(x, idx) = x.topk(k, 1);  // the largest first
  if (values == "fp32" || values == "fp16" || values == "bf16") {
    const auto type = values == "fp32"   ? torch::kFloat32
                      : values == "fp16" ? torch::kFloat16
                                         : torch::kBFloat16;
    parts.push_back(bytes_of(x.to(type)));
  } else {
    const double levels = values == "int8" ? 255 : 15;
    auto lo = std::get<0>(x.min(1, true)), hi = std::get<0>(x.max(1, true));
    auto scale = torch::where(hi > lo, (hi - lo) / levels, torch::ones_like(hi));
    auto q = ((x - lo) / scale).round().clamp(0, levels).to(torch::kUInt8);
    if (values == "int4") {  // two values a byte, the even one in the low nibble
      if (k % 2) q = torch::cat({q, torch::zeros({n, 1}, q.options())}, 1);
      q = q.view({n, -1, 2});
      q = q.select(2, 0).bitwise_or(q.select(2, 1).__lshift__(4));
    }
    parts.push_back(bytes_of(q));
    parts.push_back(bytes_of(torch::cat({scale, lo}, 1).to(torch::kFloat16)));
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
  if (values == "fp32" || values == "fp16" || values == "bf16") {
    const auto type = values == "fp32"   ? torch::kFloat32
                      : values == "fp16" ? torch::kFloat16
                                         : torch::kBFloat16;
    rows.values = column(0, vb).view(type).view({n, k}).to(torch::kFloat32);
  } else {
    auto q = column(0, vb);
    if (values == "int4")
      q = torch::stack({q.bitwise_and(0xF), q.__rshift__(4)}, 2).view({n, -1}).narrow(1, 0, k);
    auto params = column(vb, pb).view(torch::kFloat16).view({n, 2}).to(torch::kFloat32);
    rows.values = params.narrow(1, 1, 1) + params.narrow(1, 0, 1) * q.to(torch::kFloat32);
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
