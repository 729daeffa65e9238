#pragma once
// `kairo replay --netsim ARGS`: each encoded frame goes through Kairo's real transport on loopback
// (StreamServer -> Netsim relay -> StreamClient: encryption, FEC, NACK, pacing) before it is decoded.
// Frames go one at a time (lock-step) so that the per-frame result does not depend on the machine's speed:
// either the frame arrives (identical bytes, with what it took: parity used, retransmissions) or the
// client's assembler gives it up and the frame counts as lost, and the next frame is a keyframe, as the
// client asks for one (as in a live session).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "streaming/netsim.hpp"

namespace kairo {

struct TransportOutcome {
  bool delivered = false;
  std::span<const uint8_t> data;  // the access unit as received; valid until the next send()
  double transport_ms = 0;        // handed to the server -> complete at the client
  int fec_recovered = 0, retransmitted = 0;
};

struct TransportTotals {
  uint64_t frames_delivered = 0, frames_lost = 0, fec_recovered_fragments = 0, retransmitted_fragments = 0;
  uint64_t datagrams_lost_by_netsim = 0, keyframe_requests = 0;
};

class ReplayTransport {
 public:
  // Throws kairo::Error when the loopback endpoints cannot be set up or the client never connects.
  ReplayTransport(const ImpairmentConfig& impairment, uint64_t seed, int fps);
  ~ReplayTransport();
  TransportOutcome send(uint64_t frame_id, bool keyframe, std::span<const uint8_t> access_unit);
  bool take_keyframe_request();  // the client lost a frame: encode the next one as a keyframe
  TransportTotals totals() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo
