#pragma once
// `kairo control` as a process, the way operators run it: settings from KAIRO_ variables, its port chosen by
// the kernel (listen on port 0) and read back from its start-up line, stopped with SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

namespace kairo::test {

class ControlProcess {
 public:
  // `env`: KAIRO_ variables (KAIRO_LISTEN defaults to 127.0.0.1:0). Waits until it says where it listens.
  ControlProcess(const std::string& binary, std::map<std::string, std::string> env,
                 const std::filesystem::path& log)
      : log_(log) {
    env.try_emplace("KAIRO_LISTEN", "127.0.0.1:0");
    pid_ = fork();
    if (pid_ == 0) {
      for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
      if (std::freopen(log.c_str(), "w", stderr) == nullptr) _exit(126);
      execl(binary.c_str(), binary.c_str(), "control", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 300 && port_ == 0; ++i) {  // up to 30 s on a loaded machine
      const std::string text = log_text();
      const size_t line = text.find("listening on ");
      const size_t at = line == std::string::npos ? line : text.find(" port ", line);
      if (at != std::string::npos) port_ = uint16_t(std::atoi(text.c_str() + at + 6));
      if (port_ == 0) {
        if (waitpid(pid_, &status_, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  ~ControlProcess() { stop(); }
  ControlProcess(const ControlProcess&) = delete;
  ControlProcess& operator=(const ControlProcess&) = delete;

  uint16_t port() const { return port_; }  // 0: it never listened (see log_text())
  std::string log_text() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // SIGTERM and wait; returns its exit code (-1 when it did not exit by itself).
  int stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, &status_, 0);
      pid_ = -1;
    }
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  int status_ = 0;
};

}  // namespace kairo::test
