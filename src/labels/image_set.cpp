#include "labels/image_set.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>

#include "core/error.h"
#include "core/io.h"
#include "data/dataset.h"
#include "data/image_io.h"

namespace lpld::labels {
namespace fs = std::filesystem;
namespace {

constexpr char kCacheMagic[8] = {'L', 'P', 'L', 'D', 'U', '8', 'C', '1'};

struct Listed {
  std::vector<std::string> paths, names;  // relative paths; class names
  std::vector<int64_t> labels;
  std::string ids;  // "rel\0xxh64\n" per image, the hash's input
  int64_t bytes = 0;
};

// recover's own records: class order from manifest.json, images from each class.json, the
// files checked by name and size. Nothing (false) when the folder lacks them.
bool list_from_records(const std::string& dir, Listed& out) {
  const std::string mpath = dir + "/manifest.json";
  if (!file_exists(mpath)) return false;
  const json m = read_json(mpath);
  if (!m.value("complete", false) || !m.contains("classes") || !m.contains("class_names"))
    return false;
  out.names = m.at("class_names").get<std::vector<std::string>>();
  std::vector<std::pair<int64_t, std::string>> dirs;
  for (const auto& c : m.at("classes")) dirs.emplace_back(c.at("label"), c.at("dir"));
  std::sort(dirs.begin(), dirs.end());
  check_file(static_cast<int64_t>(dirs.size()) == static_cast<int64_t>(out.names.size()), mpath,
             "does not list every class");
  for (const auto& [label, sub] : dirs) {
    const std::string cpath = dir + "/" + sub + "/class.json";
    const json cj = read_json(cpath);
    if (!cj.contains("images")) return false;  // an older recover's folder
    std::set<std::string> on_disk;
    for (const auto& e : fs::directory_iterator(dir + "/" + sub))
      if (e.path().extension() == ".png") on_disk.insert(e.path().filename().string());
    std::set<std::string> recorded;
    for (const auto& img : cj.at("images")) {
      const std::string name = img.at(0), rel = sub + "/" + name;
      const auto size = img.at(1).get<int64_t>();
      recorded.insert(name);
      std::error_code ec;
      const auto actual = fs::file_size(dir + "/" + rel, ec);
      check_file(!ec && static_cast<int64_t>(actual) == size, dir + "/" + rel,
                 "differs from what recover wrote (" + cpath + "): re-run recover");
      out.paths.push_back(rel);
      out.labels.push_back(label);
      out.ids += rel + '\0' + img.at(2).get<std::string>() + '\n';
      out.bytes += size;
    }
    check_file(on_disk == recorded, dir + "/" + sub,
               "holds other images than recover wrote (" + cpath + "): re-run recover");
  }
  return true;
}

// Any other image folder: listed and every file hashed.
void list_by_reading(const std::string& dir, Listed& out) {
  auto ds = data::open_dataset("imagefolder:" + dir);
  out.names = ds->class_names();
  for (int64_t i = 0; i < ds->size(); ++i) {
    const fs::path p(ds->source(i));
    const std::string rel = fs::relative(p, dir).string();
    out.paths.push_back(rel);
    out.labels.push_back(ds->label(i));
    out.bytes += static_cast<int64_t>(fs::file_size(p));
    out.ids += rel + '\0' + hash_file(p.string()) + '\n';
  }
}

}  // namespace

struct ImageSet::OpenFile {
  explicit OpenFile(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd < 0) fail_file(path, std::string("cannot open image cache: ") + std::strerror(errno));
  }
  ~OpenFile() { ::close(fd); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  int fd;
};

ImageSet ImageSet::open(const std::string& dir, int workers) {
  check_file(fs::is_directory(dir), dir, "image folder not found");
  Listed l;
  if (!list_from_records(dir, l)) {
    l = Listed{};
    list_by_reading(dir, l);
  }
  check_file(!l.paths.empty(), dir, "image folder has no images");
  ImageSet set;
  set.dir_ = dir;
  set.paths_ = std::move(l.paths);
  set.labels_ = std::move(l.labels);
  set.class_names_ = std::move(l.names);
  set.bytes_ = l.bytes;
  set.hash_ = hash_bytes(l.ids.data(), l.ids.size());
  const auto shape = data::probe_image(dir + "/" + set.paths_.front());
  set.shape_ = {shape[0], shape[1], shape[2]};
  set.open_cache(workers);
  return set;
}

torch::Tensor ImageSet::labels_tensor() const { return torch::tensor(labels_, torch::kInt64); }

void ImageSet::open_cache(int workers) {
  const std::string cache_dir = dir_ + "/.lpld-cache";
  cache_ = cache_dir + "/images-" + hash_ + ".u8";
  const int64_t image_bytes = shape_[0] * shape_[1] * shape_[2];
  const uint64_t expect = 8 + 4 * 8 + static_cast<uint64_t>(size() * image_bytes);
  std::error_code ec;
  if (fs::exists(cache_) && fs::file_size(cache_, ec) == expect) {
    std::string head = read_file_prefix(cache_, 40);
    int64_t dims[4];
    std::memcpy(dims, head.data() + 8, 32);
    if (std::memcmp(head.data(), kCacheMagic, 8) == 0 && dims[0] == size() &&
        dims[1] == shape_[0] && dims[2] == shape_[1] && dims[3] == shape_[2]) {
      cache_file_ = std::make_shared<const OpenFile>(cache_);
      return;
    }
  }
  // (Re)build: decode every image once, on worker threads, into a temp file renamed in place.
  make_dirs(cache_dir);
  for (const auto& e : fs::directory_iterator(cache_dir, ec))  // caches of older contents
    if (e.path().extension() == ".u8") fs::remove(e.path(), ec);
  AtomicFile f(cache_);
  const int64_t dims[4] = {size(), shape_[0], shape_[1], shape_[2]};
  f.write(kCacheMagic, 8);
  f.write(dims, sizeof dims);
  data::detail::parallel_for(size(), workers, [&](int64_t i) {
    const std::string path = dir_ + "/" + paths_[i];
    torch::Tensor img = data::read_image(path).contiguous();
    check_file(img.size(0) == shape_[0] && img.size(1) == shape_[1] && img.size(2) == shape_[2],
               path, "image size differs from the set's first image");
    f.write_at(40 + static_cast<uint64_t>(i * image_bytes), img.data_ptr(),
               static_cast<size_t>(image_bytes));
  });
  f.commit();
  cache_file_ = std::make_shared<const OpenFile>(cache_);
}

torch::Tensor ImageSet::read(const std::vector<int64_t>& indices) const {
  const int64_t n = static_cast<int64_t>(indices.size());
  const int64_t image_bytes = shape_[0] * shape_[1] * shape_[2];
  auto out = torch::empty({n, shape_[0], shape_[1], shape_[2]}, torch::kUInt8);
  const int fd = cache_file_->fd;
  auto* dst = static_cast<char*>(out.data_ptr());
  for (int64_t k = 0; k < n; ++k) {
    check_file(indices[k] >= 0 && indices[k] < size(), cache_, "image index out of range");
    const ssize_t got = ::pread(fd, dst + k * image_bytes, static_cast<size_t>(image_bytes),
                                static_cast<off_t>(40 + indices[k] * image_bytes));
    if (got != image_bytes)
      fail_file(cache_, "image cache is truncated (delete it: it is rebuilt)");
  }
  return out;
}

torch::Tensor ImageSet::read_all() const {
  std::vector<int64_t> all(static_cast<size_t>(size()));
  std::iota(all.begin(), all.end(), 0);
  return read(all);
}

}  // namespace lpld::labels
