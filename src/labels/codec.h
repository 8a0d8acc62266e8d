// How a label store keeps a step's teacher logits [n, C] (issue: quantized soft labels).
//
//   top-k (LPQLD's "MR-k"): only the k largest logits of each row and their class indices;
//        at training time the teacher distribution is the softmax over the kept entries at the
//        current temperature, zero elsewhere. k = 0 (or k >= C) keeps every class.
//   values: fp32, fp16, bf16 as they are; int8 / int4 with a per-row scale and offset (fp16):
//        q = round((x - lo) / scale), scale = (hi - lo) / (2^bits - 1) over the row's kept
//        values. The offset's rounding does not matter: a softmax ignores a shift of its row.
//   int8-max / int4-max / int2-max: the same levels below the row's maximum, x' = -scale * q with
//        q = round((hi - x) / scale), and only the scale kept, as one byte (a 4-bit exponent
//        and a 4-bit mantissa: scale = (16 + m) * 2^(e - 12), 2^-8 ... 248, steps <= 6.25 %),
//        the smallest such scale >= (hi - lo) / (2^bits - 1). Why: the offset is dead weight
//        (a softmax ignores a shift), and with few classes the 4 parameter bytes of int4 weigh
//        almost as much as its values (10 classes: 5 value bytes a row), so the same bytes keep
//        more label steps. The decoded values are exact in float32 (q * scale has <= 13
//        significant bits), so any reader decodes them bit for bit.
//
// int2-max (issue #30: fewer bits where the student does not need them) has 3 levels below the
// maximum, four values a byte: with 10 classes a row is 4 bytes against int4-max's 6.
//
// Row layout: values (k x 4 / 2 / 2 / 1 bytes, ceil(k / 2) for int4, ceil(k / 4) for int2),
// then the
// int8/int4 scale and offset (2 x fp16) or the int8-max/int4-max scale byte, then the class
// indices (k x uint16, or uint32 above 65,536 classes). A record is n rows
// (docs/label-store.md).
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/choice.h"

namespace lpld::labels {

// How a row's kept logits are stored (above).
enum class LabelValues { fp32, fp16, bf16, int8, int4, int8_max, int4_max, int2_max };

// The one table of label value formats: validation, help text, sizes, the header's names and
// the Python reader's table (python/lpld_labels.py, checked against this one by a test) all
// come from it.
struct LabelValuesFormat {
  LabelValues values;
  const char* name;
  int bits;                // per value
  int64_t param_bytes;     // per row: int8/int4 scale + offset (2 x fp16), -max scale byte
  bool max_relative;       // levels below the row's maximum (int8-max / int4-max)
  torch::ScalarType type;  // fp32 / fp16 / bf16 values as they are; Undefined when quantized
};
const std::vector<LabelValuesFormat>& label_values_formats();
const LabelValuesFormat& format_of(LabelValues values);
const std::vector<Choice<LabelValues>>& choices(LabelValues);

struct LabelCodec {
  int64_t topk = 0;  // 0: every class
  LabelValues values = LabelValues::fp16;

  // Throws invalid_argument naming --topk.
  void validate() const;
  int64_t kept(int64_t classes) const;  // values per row
  bool indexed(int64_t classes) const { return kept(classes) < classes; }
  int64_t index_bytes(int64_t classes) const { return classes <= 65536 ? 2 : 4; }
  int64_t row_bytes(int64_t classes) const;
  // Of a row's bytes: values, quantization parameters, indices.
  int64_t value_bytes(int64_t classes) const;
  int64_t param_bytes() const { return format_of(values).param_bytes; }
  bool quantized() const { return format_of(values).bits <= 8; }
  int bits() const { return format_of(values).bits; }
  bool max_relative() const { return format_of(values).max_relative; }

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

// The scale of an int8-max / int4-max scale byte (exact in float32), and the smallest byte
// whose scale is >= `scale` (255 when none is).
float max_relative_scale(uint8_t code);
uint8_t max_relative_code(float scale);

}  // namespace lpld::labels
