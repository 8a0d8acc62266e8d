// Progress reporting for long loops. Stages take a `Progress&`; the CLI passes a
// console bar (stderr, with rate and ETA), tests pass `Progress::null()`.
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace lpld {

class Progress {
 public:
  virtual ~Progress() = default;
  // Starts a task of `total` units (e.g. "img", "it", "step").
  virtual void start(const std::string& label, int64_t total, const std::string& unit) = 0;
  // Sets the units done so far; `status` is shown after the bar (losses, accuracy...).
  virtual void update(int64_t done, const std::string& status = "") = 0;
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
  void finish(const std::string& status) override;
  void message(const std::string& text) override;
  void warning(const std::string& text) override;

 private:
  void draw(bool final);
  using Clock = std::chrono::steady_clock;
  bool quiet_, tty_;
  std::mutex mutex_;
  std::string label_, unit_, status_;
  int64_t total_ = 0, done_ = 0;
  Clock::time_point start_, last_draw_;
};

}  // namespace lpld
