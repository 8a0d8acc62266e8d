// Progress reporting for long loops. Stages take a `Progress&`; the CLI passes a
// console bar (stderr, with rate and ETA), tests pass `Progress::null()`.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace lpld {

class Progress {
 public:
  virtual ~Progress() = default;
  // Starts a task of `total` units (e.g. "img", "it", "step").
  virtual void start(const std::string& label, int64_t total, const std::string& unit) = 0;
  // Sets the units done so far; `status` is shown after the bar (losses, accuracy...).
  virtual void update(int64_t done, const std::string& status = "") = 0;
  // `units` of those update() counts were found done by a killed run, not done now (a
  // resumed run): they are left out of the rate.
  virtual void skip(int64_t units) { (void)units; }
  virtual void finish(const std::string& status = "") = 0;
  // A diagnostic line (goes to the log, never to stdout).
  virtual void message(const std::string& text) = 0;
  // Something the user should act on or know about (a log warning).
  virtual void warning(const std::string& text) { message(text); }
  static Progress& null();
};

// Writes a bar to stderr: redrawn in place on a terminal, a line every few seconds
// otherwise (logs, CI).
class ConsoleProgress : public Progress {
 public:
  explicit ConsoleProgress(bool quiet = false);
  void start(const std::string& label, int64_t total, const std::string& unit) override;
  void update(int64_t done, const std::string& status) override;
  void skip(int64_t units) override;
  void finish(const std::string& status) override;
  void message(const std::string& text) override;
  void warning(const std::string& text) override;

 private:
  void draw(bool final);
  using Clock = std::chrono::steady_clock;
  bool quiet_, tty_;
  std::mutex mutex_;
  std::string label_, unit_, status_;
  int64_t total_ = 0, done_ = 0, skipped_ = 0;
  Clock::time_point start_, last_draw_;
};

// Passes every event on to `inner` and appends it to `path` as one JSON line: {"t": seconds
// since the log was opened, "event": start|update|skip|finish|message|warning, ...}. A trace
// to plot a run's speed by, and the record that the kill tests and bench/resume_time.sh
// measure a killed run's work with: each line is one write(2) to a file opened with
// O_APPEND, so a SIGKILL loses no line written before it. (A log is appended to, not replaced
// atomically like lpld's outputs: a resumed run adds its lines after the killed run's.) Throws
// runtime_error naming `path` when it cannot be opened or written.
class LoggedProgress : public Progress {
 public:
  LoggedProgress(std::unique_ptr<Progress> inner, const std::string& path);
  ~LoggedProgress() override;
  LoggedProgress(const LoggedProgress&) = delete;
  LoggedProgress& operator=(const LoggedProgress&) = delete;
  void start(const std::string& label, int64_t total, const std::string& unit) override;
  void update(int64_t done, const std::string& status) override;
  void skip(int64_t units) override;
  void finish(const std::string& status) override;
  void message(const std::string& text) override;
  void warning(const std::string& text) override;

 private:
  void append(const std::string& event, const nlohmann::ordered_json& fields);
  std::unique_ptr<Progress> inner_;
  std::string path_;
  int fd_ = -1;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point opened_;
};

}  // namespace lpld
