#include "core/progress.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "core/io.h"

namespace lpld {
namespace {
class NullProgress : public Progress {
 public:
  void start(const std::string&, int64_t, const std::string&) override {}
  void update(int64_t, const std::string&) override {}
  void finish(const std::string&) override {}
  void message(const std::string&) override {}
};

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const int t = static_cast<int>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%d:%02d", t / 60, t % 60);
  return buf;
}
}  // namespace

Progress& Progress::null() {
  static NullProgress p;
  return p;
}

ConsoleProgress::ConsoleProgress(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}

void ConsoleProgress::start(const std::string& label, int64_t total, const std::string& unit) {
  std::lock_guard<std::mutex> lock(mutex_);
  label_ = label;
  unit_ = unit;
  total_ = total;
  done_ = skipped_ = 0;
  status_.clear();
  start_ = last_draw_ = Clock::now();
}

void ConsoleProgress::update(int64_t done, const std::string& status) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ = done;
  if (!status.empty()) status_ = status;
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since < (tty_ ? 0.2 : 10.0)) return;
  last_draw_ = now;
  draw(false);
}

void ConsoleProgress::skip(int64_t units) {
  std::lock_guard<std::mutex> lock(mutex_);
  skipped_ += units;
}

void ConsoleProgress::finish(const std::string& status) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!status.empty()) status_ = status;
  if (done_ < total_) done_ = total_;
  draw(true);
}

void ConsoleProgress::message(const std::string& text) { spdlog::info("{}", text); }
void ConsoleProgress::warning(const std::string& text) { spdlog::warn("{}", text); }

void ConsoleProgress::draw(bool final) {
  if (quiet_) return;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_ - skipped_) / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done_) / rate : -1;
  const double frac = total_ > 0 ? static_cast<double>(done_) / total_ : 1.0;
  const int width = 24, fill = static_cast<int>(frac * width);
  std::string bar(fill, '#');
  bar.resize(width, '.');
  std::fprintf(
      stderr, "%s%-14s [%s] %3.0f%% %lld/%lld %.1f %s/s %s %s%s", tty_ ? "\r\033[K" : "",
      label_.c_str(), bar.c_str(), frac * 100, static_cast<long long>(done_),
      static_cast<long long>(total_), rate, unit_.c_str(),
      final ? ("in " + format_duration(elapsed)).c_str() : ("eta " + format_duration(eta)).c_str(),
      status_.c_str(), (final || !tty_) ? "\n" : "");
  std::fflush(stderr);
}

LoggedProgress::LoggedProgress(std::unique_ptr<Progress> inner, const std::string& path)
    : inner_(std::move(inner)), path_(path), opened_(std::chrono::steady_clock::now()) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error(path + ": cannot open the progress log: " + std::strerror(errno));
}

LoggedProgress::~LoggedProgress() { ::close(fd_); }

// Called with mutex_ held, so the lines are in the order the inner progress saw the events.
void LoggedProgress::append(const std::string& event, const nlohmann::ordered_json& fields) {
  nlohmann::ordered_json j = {
      {"t", std::chrono::duration<double>(std::chrono::steady_clock::now() - opened_).count()},
      {"event", event}};
  j.update(fields);
  const std::string line = j.dump() + "\n";
  const ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size()))
    throw std::runtime_error(path_ + ": cannot write the progress log: " +
                             (n < 0 ? std::strerror(errno) : "short write (disk full?)"));
}

void LoggedProgress::start(const std::string& label, int64_t total, const std::string& unit) {
  std::lock_guard<std::mutex> lock(mutex_);
  inner_->start(label, total, unit);
  append("start", {{"task", label}, {"total", total}, {"unit", unit}, {"pid", ::getpid()}});
}

void LoggedProgress::update(int64_t done, const std::string& status) {
  std::lock_guard<std::mutex> lock(mutex_);
  inner_->update(done, status);
  nlohmann::ordered_json f = {{"done", done}};
  if (!status.empty()) f["status"] = status;
  append("update", f);
}

void LoggedProgress::skip(int64_t units) {
  std::lock_guard<std::mutex> lock(mutex_);
  inner_->skip(units);
  append("skip", {{"units", units}});
}

void LoggedProgress::finish(const std::string& status) {
  std::lock_guard<std::mutex> lock(mutex_);
  inner_->finish(status);
  append("finish", status.empty() ? nlohmann::ordered_json::object()
                                  : nlohmann::ordered_json{{"status", status}});
}

void LoggedProgress::message(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  inner_->message(text);
  append("message", {{"text", text}});
}

void LoggedProgress::warning(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  inner_->warning(text);
  append("warning", {{"text", text}});
}

}  // namespace lpld
