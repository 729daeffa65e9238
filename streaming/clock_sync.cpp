#include "streaming/clock_sync.hpp"

#include <algorithm>

namespace kairo {

void ClockSync::add(const wire::PongMessage& pong, int64_t client_receive_ns) {
  const int64_t rtt =
      (client_receive_ns - pong.client_send_ns) - (pong.server_send_ns - pong.server_receive_ns);
  if (rtt < 0 || rtt > 10'000'000'000) return;  // nonsense (clock jump or forged echo): ignore
  const size_t filled = std::min(count_, recent_.size());
  if (filled >= 4) {
    int64_t sum = 0;
    for (size_t i = 0; i < filled; ++i) sum += recent_[i].rtt_ns;
    if (rtt > 3 * (sum / int64_t(filled))) return;
  }
  const int64_t offset =
      ((pong.server_receive_ns - pong.client_send_ns) + (pong.server_send_ns - client_receive_ns)) / 2;
  recent_[count_ % recent_.size()] = Sample{rtt, offset};
  ++count_;
  const Sample* best = &recent_[0];
  for (size_t i = 0; i < std::min(count_, recent_.size()); ++i)
    if (recent_[i].rtt_ns < best->rtt_ns) best = &recent_[i];
  offset_ns_ = best->offset_ns;
  rtt_ns_ = best->rtt_ns;
}

}  // namespace kairo
