// File helpers: atomic writes (temp file + fsync + rename: a reader never sees a half
// written file under the final name), whole-file reads, content hashes (xxh64).
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace lpld {

using json = nlohmann::json;

// Writes `contents` to `path` atomically. Creates parent directories.
void write_file_atomic(const std::string& path, const std::string& contents);

// Opens `path + ".tmp.<host>.<pid>"` for streaming writes and renames it over `path` on
// commit(). If destroyed without commit() (exception, early return), the temp file is removed;
// the leftovers of a killed writer on this host are removed by the next AtomicFile on `path`.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t size);
  void write_at(uint64_t offset, const void* data, size_t size);  // patch already written bytes
  uint64_t tell() const { return written_; }
  void commit();
  const std::string& temp_path() const { return temp_; }

 private:
  std::string path_, temp_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

std::string read_file(const std::string& path);
// The first `n` bytes (fewer when the file is shorter).
std::string read_file_prefix(const std::string& path, size_t n);
json read_json(const std::string& path);
void write_json(const std::string& path, const json& j);  // atomic, pretty

// xxh64 of a byte range / of a file's contents, as 16 lowercase hex digits.
std::string hash_bytes(const void* data, size_t size);
std::string hash_file(const std::string& path);
uint64_t xxh64(const void* data, size_t size, uint64_t seed = 0);

bool file_exists(const std::string& path);
void make_dirs(const std::string& path);

}  // namespace lpld
