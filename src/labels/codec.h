// How a label store keeps a step's teacher logits [n, C] (issue: quantized soft labels).
//
//   top-k (LPQLD's "MR-k"): only the k largest logits of each row and their class indices;
//        at training time the teacher distribution is the softmax over the kept entries at the
//        current temperature, zero elsewhere. k = 0 (or k >= C) keeps every class.
//   values: fp32, fp16, bf16 as they are; int8 / int4 with a per-row scale and offset (fp16):
//        q = round((x - lo) / scale), scale = (hi - lo) / (2^bits - 1) over the row's kept
//        values. The offset's rounding does not matter: a softmax ignores a shift of its row.
//
// Row layout: values (k x 4 / 2 / 2 / 1 bytes, or ceil(k / 2) bytes for int4), then the
// int8/int4 scale and offset (2 x fp16), then the class indices (k x uint16, or uint32 above
// 65,536 classes). A record is n rows (docs/label-store.md).
#pragma once
#include <torch/torch.h>

#include <string>

namespace lpld::labels {

struct LabelCodec {
  int64_t topk = 0;             // 0: every class
  std::string values = "fp16";  // fp32 | fp16 | bf16 | int8 | int4

  // Throws invalid_argument naming --topk / --logits.
  void validate() const;
  int64_t kept(int64_t classes) const;  // values per row
  bool indexed(int64_t classes) const { return kept(classes) < classes; }
  int64_t index_bytes(int64_t classes) const { return classes <= 65536 ? 2 : 4; }
  int64_t row_bytes(int64_t classes) const;
  // Of a row's bytes: values, quantization parameters, indices.
  int64_t value_bytes(int64_t classes) const;
  int64_t param_bytes() const { return values == "int8" || values == "int4" ? 4 : 0; }

  // logits [n, C] (any float dtype, any device) -> n * row_bytes(C) bytes.
  std::string encode(const torch::Tensor& logits) const;

  // What a record holds: kept logits [n, k] (float32) and, with top-k, their classes [n, k].
  struct Rows {
    torch::Tensor values, indices;
  };
  Rows decode(const char* data, int64_t n, int64_t classes) const;
};

// The teacher distribution of decoded rows at temperature T: softmax(values / T) over the kept
// classes, scattered into [n, C] (zero for the classes top-k dropped).
torch::Tensor teacher_probs(const LabelCodec::Rows& rows, int64_t classes, double T);

}  // namespace lpld::labels
