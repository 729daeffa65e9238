#pragma once
// The render thread's hand-off to the encode thread, and the way back. One job waits at most: render blocks
// until the encoder takes it (back-pressure: a rendered frame is never thrown away, and the renderer's slots
// bound what is in flight). Encoded frames go back for the render thread to release, since the renderer is
// used from that thread only. Its own lock, held only to move a job or swap a list: the session's state lock
// (reason, caps, stats) is never held across a wait.
#include <condition_variable>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace kairo {

template <class Job, class Returned>
class FrameHandoff {
 public:
  explicit FrameHandoff(size_t max_returned) {
    returned_.reserve(max_returned);  // both lists keep their capacity: no allocation per frame
  }

  // Render thread: waits until the previous job was taken. False once closed (the job was not handed over).
  bool put(Job job) {
    {
      std::unique_lock lock(mutex_);
      taken_.wait(lock, [&] { return !job_ || closed_; });
      if (closed_) return false;
      job_ = std::move(job);
    }
    ready_.notify_one();
    return true;
  }

  // Encode thread: waits for the next job; nullopt once closed.
  std::optional<Job> take() {
    std::optional<Job> job;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return job_.has_value() || closed_; });
      if (closed_) return std::nullopt;
      job.swap(job_);
    }
    taken_.notify_one();
    return job;
  }

  // Encode thread: a job is done with; the render thread gets it back from take_returned().
  void give_back(Returned returned) {
    std::lock_guard lock(mutex_);
    returned_.push_back(std::move(returned));
  }

  // Render thread: swaps what was given back into `out` (cleared first; keeps both capacities).
  void take_returned(std::vector<Returned>& out) {
    out.clear();
    std::lock_guard lock(mutex_);
    out.swap(returned_);
  }

  // Wakes both sides for good.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
    taken_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_, taken_;
  std::optional<Job> job_;
  std::vector<Returned> returned_;
  bool closed_ = false;
};

}  // namespace kairo
