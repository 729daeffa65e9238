#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <thread>

#include "core/realtime_scheduling.hpp"

namespace kairo {
namespace {

int policy_of(pthread_t thread) {
  int policy = -1;
  sched_param param{};
  pthread_getschedparam(thread, &policy, &param);
  return policy;
}

// The guard puts the thread in SCHED_FIFO where permitted (root here: CI runs as root), threads started
// meanwhile inherit it, and the thread gets its ordinary class back when the guard goes.
TEST(RealtimeScheduling, the_thread_runs_real_time_while_the_guard_lives_and_ordinary_after) {
  const int before = policy_of(pthread_self());
  ASSERT_NE(before, SCHED_FIFO);
  int started_meanwhile = -1;
  {
    const RealtimeScheduling realtime;
    if (geteuid() == 0) {
      EXPECT_TRUE(realtime.granted());
    }
    if (!realtime.granted()) {
      EXPECT_EQ(policy_of(pthread_self()), before);  // refused: nothing changed
      GTEST_SKIP() << "real-time scheduling not permitted here";
    }
    EXPECT_EQ(policy_of(pthread_self()), SCHED_FIFO);
    std::thread child([&] { started_meanwhile = policy_of(pthread_self()); });
    child.join();
  }
  EXPECT_EQ(started_meanwhile, SCHED_FIFO);
  EXPECT_EQ(policy_of(pthread_self()), before);
}

}  // namespace
}  // namespace kairo
