#pragma once
// SIGINT/SIGTERM as a stop flag for long-running subcommands: the signals are blocked in every thread and a
// watcher thread waits for them, so that a Ctrl-C ends the command through its normal path (sessions ended,
// reports written, sockets closed) rather than killing it mid-way.
#include <atomic>
#include <csignal>
#include <thread>

namespace kairo::app {

class SignalStop {
 public:
  SignalStop() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    watcher_ = std::thread([this] {
      const timespec tick{0, 200'000'000};
      while (!done_)
        if (sigtimedwait(&signals_, nullptr, &tick) > 0) stop = true;
    });
  }
  ~SignalStop() {
    done_ = true;
    watcher_.join();
  }
  std::atomic<bool> stop{false};

 private:
  sigset_t signals_{};
  std::atomic<bool> done_{false};
  std::thread watcher_;
};

}  // namespace kairo::app
