#include "core/realtime_scheduling.hpp"

#include <pthread.h>
#include <sched.h>

namespace kairo {

RealtimeScheduling::RealtimeScheduling() {
  sched_param previous{};
  if (pthread_getschedparam(pthread_self(), &previous_policy_, &previous) != 0) return;
  previous_priority_ = previous.sched_priority;
  sched_param wanted{};
  wanted.sched_priority = sched_get_priority_min(SCHED_FIFO);
  granted_ = pthread_setschedparam(pthread_self(), SCHED_FIFO, &wanted) == 0;
}

RealtimeScheduling::~RealtimeScheduling() {
  if (!granted_) return;
  sched_param previous{};
  previous.sched_priority = previous_priority_;
  pthread_setschedparam(pthread_self(), previous_policy_, &previous);
}

}  // namespace kairo
