#pragma once
// Progress of long work (`kairo replay`, `render --trace`, `encode`) on stderr, so that stdout stays the
// machine-readable result: on a terminal one line rewritten in place (done/total, rate, time left) at most
// five times a second; otherwise (CI logs, pipes) one line every few seconds; nothing when quiet.
// Thread-safe: a suite's cases advance one shared reporter from several threads.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace kairo {

enum class ProgressMode { kAuto, kQuiet };

class Progress {
 public:
  // `unit`: what is counted ("frames"); `total`: how many there will be (0: unknown).
  Progress(std::string what, std::string unit, uint64_t total, ProgressMode mode = ProgressMode::kAuto,
           std::FILE* out = stderr);
  ~Progress();  // finishes the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add_total(uint64_t more);  // work found along the way (a suite's cases learn their frame counts)
  void advance(uint64_t done = 1);
  void finish();  // the last line (the total rate); idempotent

  static constexpr double kLogIntervalS = 5.0;  // between lines when stderr is not a terminal

 private:
  void print_locked(bool final);
  std::string what_, unit_;
  std::FILE* out_;
  bool quiet_, terminal_, finished_ = false;
  uint64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
  std::mutex mutex_;
};

}  // namespace kairo
