// Test helpers for tests that run the lpld binary as separate processes (kill tests,
// distributed runs): start one with extra environment variables, wait for its exit status.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace lpld::test {

// The lpld binary under test (CTest sets LPLD_BINARY), or "" when it is not known.
inline std::string lpld_binary() {
  const char* b = std::getenv("LPLD_BINARY");
  return b ? b : "";
}

// Skips a test that runs the binary when there is none.
#define LPLD_REQUIRE_BINARY() \
  if (lpld::test::lpld_binary().empty()) GTEST_SKIP() << "LPLD_BINARY not set"

// Starts `argv` (argv[0]: the program's path) with `env` added; stderr goes to `log`,
// stdout is discarded.
inline pid_t spawn(const std::vector<std::string>& argv, const std::string& log,
                   const std::map<std::string, std::string>& env = {}) {
  const pid_t pid = fork();
  if (pid == 0) {
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> c;
    for (const auto& a : argv) c.push_back(const_cast<char*>(a.c_str()));
    c.push_back(nullptr);
    if (!freopen(log.c_str(), "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(126);
    execv(c[0], c.data());
    _exit(127);
  }
  return pid;
}

// The exit status of `pid`, or 128 + the signal that ended it.
inline int finish(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace lpld::test
