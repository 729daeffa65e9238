#pragma once
// Runs the calling thread in a real-time scheduling class while the guard lives, for threads that sleep
// nearly all the time and must wake on time: the network emulator's relay (netem runs in the kernel, not
// behind the busy threads of the programs it sits between) and the reference client's pose sampling (a
// headset's tracking thread runs so). Threads the guarded thread starts meanwhile inherit the class.
// SCHED_FIFO at the lowest real-time priority; needs CAP_SYS_NICE or an RLIMIT_RTPRIO (root has both).
// Without them nothing changes and granted() says so. Never for threads that compute: a real-time thread
// that does not sleep keeps ordinary threads off its core.
namespace kairo {

class RealtimeScheduling {
 public:
  RealtimeScheduling();
  ~RealtimeScheduling();  // the thread's previous class and priority again
  RealtimeScheduling(const RealtimeScheduling&) = delete;
  RealtimeScheduling& operator=(const RealtimeScheduling&) = delete;

  bool granted() const { return granted_; }

 private:
  bool granted_ = false;
  int previous_policy_ = 0;
  int previous_priority_ = 0;
};

}  // namespace kairo
