// Label store reader: open (magic, header, sizes), every record's checksum, the last step's
// record decoded by its codec (top-k, int8/int4 and their -max forms, stored views), and one
// step's logits.
#include "fuzz_common.h"
#include "labels/label_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lpld::fuzz::run([&] {
    lpld::labels::LabelStore s(lpld::fuzz::write("s.lpld", data, size));
    s.verify();
    if (s.header().steps_kept == 0) return;
    s.read_step(s.header().steps_kept - 1);
    s.logits(0);
  });
}
