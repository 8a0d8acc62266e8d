#include "core/lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/io.h"

namespace lpld {
namespace fs = std::filesystem;

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  std::string h = buf;
  for (auto& ch : h)
    if (ch == '.' || ch == '/' || ch == ' ') ch = '_';
  return h.empty() ? "localhost" : h;
}

std::unique_ptr<FileLock> FileLock::try_acquire(const std::string& path) {
  make_dirs(fs::path(path).parent_path().string());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail_file(path, std::string("cannot create lock file: ") + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return nullptr;
    fail_file(path, std::string("cannot lock: ") + std::strerror(err));
  }
  const std::string me = host_name() + " " + std::to_string(getpid());
  if (::ftruncate(fd, 0) == 0 && ::pwrite(fd, me.data(), me.size(), 0) < 0) {
    // the holder's name is informative only
  }
  return std::unique_ptr<FileLock>(new FileLock(path, fd));
}

std::unique_ptr<FileLock> FileLock::acquire_or_fail(const std::string& path,
                                                    const std::string& what) {
  auto lock = try_acquire(path);
  if (!lock) {
    const std::string who = holder(path);
    fail_file(what, "is being written by another process (" +
                        (who.empty() ? std::string("unknown") : "host/pid " + who) + ", lock " +
                        path + "); wait for it or use another output");
  }
  return lock;
}

std::string FileLock::holder(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const std::exception&) {
    return "";
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

void FileLock::release_and_remove() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

void remove_stale_temps(const std::string& path) {
  const fs::path p(path);
  const std::string prefix = p.filename().string() + ".tmp." + host_name() + ".";
  std::error_code ec;
  for (const auto& e :
       fs::directory_iterator(p.parent_path().empty() ? "." : p.parent_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid == getpid()) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) fs::remove(e.path(), ec);
  }
}

}  // namespace lpld
