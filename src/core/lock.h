// Exclusive advisory locks (flock) on the outputs a process is writing, so that a second
// process asked for the same work fails at once, or takes only what is unclaimed, with a
// message naming the lock and its holder -- never a rename error halfway (issue: nothing lost,
// nothing silently wrong). The lock file holds "<host> <pid>" for that message; the kernel
// releases the lock when the holder dies, so a killed run never blocks the next one.
#pragma once
#include <memory>
#include <string>

namespace lpld {

class FileLock {
 public:
  // The lock, or nullptr when another process holds it.
  static std::unique_ptr<FileLock> try_acquire(const std::string& path);
  // The lock; when another process holds it, a runtime_error naming `what`, the lock file and
  // the holder.
  static std::unique_ptr<FileLock> acquire_or_fail(const std::string& path,
                                                   const std::string& what);
  // "<host> <pid>" written by the holder ("" when unknown).
  static std::string holder(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  // Releases the lock and removes the file (once the locked work is published).
  void release_and_remove();

 private:
  FileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

// This host's name and this process's id, as written into lock and temp file names.
std::string host_name();

// Removes `path.tmp.<host>.<pid>` files (AtomicFile temp files) whose writer on this host is
// no longer running. Temp files of other hosts (a shared file system) are left alone.
void remove_stale_temps(const std::string& path);

}  // namespace lpld
