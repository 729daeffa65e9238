#pragma once
// Client-side clock synchronisation from ping/pong: the offset of the server's clock, taken from the sample
// with the smallest round trip among recent ones (the one least distorted by queueing), assuming symmetric
// paths; samples with a round trip over 3x the mean are ignored. Ping every 10 ms for the first 100 samples,
// then every 100 ms (as WiVRn does).
#include <array>
#include <cstddef>
#include <cstdint>

#include "streaming/messages.hpp"

namespace kairo {

class ClockSync {
 public:
  void add(const wire::PongMessage& pong, int64_t client_receive_ns);
  bool ready() const { return count_ >= 8; }
  int64_t offset_ns() const { return offset_ns_; }  // server clock - client clock
  int64_t rtt_ns() const { return rtt_ns_; }        // of the chosen sample
  int64_t min_rtt_ns() const { return rtt_ns_; }
  int64_t server_to_client(int64_t server_ns) const { return server_ns - offset_ns_; }
  int64_t ping_interval_ns() const { return count_ < 100 ? 10'000'000 : 100'000'000; }
  size_t samples() const { return count_; }

 private:
  struct Sample {
    int64_t rtt_ns, offset_ns;
  };
  std::array<Sample, 32> recent_{};
  size_t count_ = 0;
  int64_t offset_ns_ = 0, rtt_ns_ = 0;
};

}  // namespace kairo
