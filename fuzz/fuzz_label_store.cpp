// Label store reader: open (magic, header, sizes), every record's checksum, one step's logits.
#include "fuzz_common.h"
#include "labels/label_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lpld::fuzz::run([&] {
    lpld::labels::LabelStore s(lpld::fuzz::write("s.lpld", data, size));
    s.verify();
    if (s.header().steps_kept > 0) s.logits(0);
  });
}
