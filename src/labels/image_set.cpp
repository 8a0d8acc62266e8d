#include "labels/image_set.h"

#include <filesystem>

#include "core/error.h"
#include "core/io.h"

namespace lpld::labels {
namespace fs = std::filesystem;

ImageSet load_image_set(const std::string& dir) {
  check_file(fs::is_directory(dir), dir, "image folder not found");
  ImageSet set;
  auto ds = data::open_dataset("imagefolder:" + dir);
  std::string ids;
  for (int64_t i = 0; i < ds->size(); ++i) {
    const fs::path p(ds->source(i));
    const std::string rel = fs::relative(p, dir).string();
    set.paths.push_back(rel);
    set.bytes += static_cast<int64_t>(fs::file_size(p));
    ids += rel + '\0' + hash_file(p.string()) + '\n';
  }
  set.hash = hash_bytes(ids.data(), ids.size());
  set.images = data::load_into_memory(ds);
  return set;
}

}  // namespace lpld::labels
