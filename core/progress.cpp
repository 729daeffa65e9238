#include "core/progress.hpp"

#include <unistd.h>

#include <algorithm>

namespace kairo {

Progress::Progress(std::string what, std::string unit, uint64_t total, ProgressMode mode, std::FILE* out)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      out_(out),
      quiet_(mode == ProgressMode::kQuiet),
      terminal_(isatty(fileno(out)) == 1),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

Progress::~Progress() {
  finish();
}

void Progress::add_total(uint64_t more) {
  std::lock_guard lock(mutex_);
  total_ += more;
}

void Progress::advance(uint64_t done) {
  std::lock_guard lock(mutex_);
  done_ += done;
  if (quiet_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (since < (terminal_ ? 0.2 : kLogIntervalS)) return;
  last_print_ = now;
  print_locked(false);
}

void Progress::finish() {
  std::lock_guard lock(mutex_);
  if (finished_) return;
  finished_ = true;
  // A terminal line is closed with its final state; a log gets a last line only for work long enough to
  // have printed one already (a short run stays silent).
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (!quiet_ && (terminal_ ? done_ > 0 : elapsed >= kLogIntervalS)) print_locked(true);
}

void Progress::print_locked(bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? double(done_) / elapsed : 0;
  char line[256];
  int n =
      std::snprintf(line, sizeof(line), "%s: %llu", what_.c_str(), static_cast<unsigned long long>(done_));
  if (total_ > 0)
    n += std::snprintf(line + n, sizeof(line) - size_t(n), "/%llu", static_cast<unsigned long long>(total_));
  n +=
      std::snprintf(line + n, sizeof(line) - size_t(n), " %s, %.1f %s/s", unit_.c_str(), rate, unit_.c_str());
  if (!final && total_ > done_ && rate > 0)
    std::snprintf(line + n, sizeof(line) - size_t(n), ", %.0f s left", double(total_ - done_) / rate);
  else if (final)
    std::snprintf(line + n, sizeof(line) - size_t(n), ", %.1f s", elapsed);
  if (terminal_)
    std::fprintf(out_, "\r%s\033[K%s", line, final ? "\n" : "");
  else
    std::fprintf(out_, "%s\n", line);
  std::fflush(out_);
}

}  // namespace kairo
