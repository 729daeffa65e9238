#pragma once
// Receiver side of one video stream: collects fragments (in any order, duplicated or not), recovers lost data
// fragments with Reed-Solomon parity, and hands complete frames out strictly in frame order. A frame not
// complete by its deadline is declared lost (the caller then asks for a keyframe); fragments of frames
// already delivered or declared lost are counted as late and dropped, never played.
// Memory is bounded: a fixed number of frames in progress, each slot's buffers grown once and reused; when
// all slots are busy the oldest frame in progress is declared lost to make room.
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "streaming/wire.hpp"

namespace kairo {

struct AssembledFrame {
  uint64_t frame_id = 0;
  uint64_t pose_id = 0;
  int64_t pose_time_ns = 0;
  int64_t capture_time_ns = 0;
  int64_t first_send_ns = 0;  // sender clock
  int64_t last_send_ns = 0;
  int64_t first_arrival_ns = 0;  // receiver clock
  int64_t complete_ns = 0;
  uint8_t stream = 0;
  bool keyframe = false;
  int fec_recovered = 0;          // data fragments rebuilt from parity
  int retransmitted = 0;          // fragments that arrived as retransmissions
  std::span<const uint8_t> data;  // the access unit; valid until the next call to pop()
};

struct AssemblerStats {
  uint64_t fragments = 0, duplicates = 0, invalid = 0, late_fragments = 0;
  uint64_t frames_delivered = 0, frames_lost = 0, frames_recovered = 0;
};

class FrameAssembler {
 public:
  // fragment_body_bytes: the largest fragment body (the MTU's); a frame's may be smaller, down to
  // wire::kMinFragmentBody. deadline_ns: how long after a frame's first fragment arrives it may still
  // complete.
  FrameAssembler(size_t fragment_body_bytes, int64_t deadline_ns, int max_frames_in_progress = 32);

  // A decrypted kVideo payload. Returns false if it was refused (malformed or inconsistent with its frame).
  bool add(std::span<const uint8_t> payload, int64_t now_ns);
  // Declares lost every frame past its deadline (and frames never seen whose successors are past theirs).
  void expire(int64_t now_ns);
  // The next frame in order if it is complete; null otherwise. Frames declared lost are skipped (see lost()).
  const AssembledFrame* pop();
  // Frame ids declared lost since the last call (the caller asks for a keyframe or a reference invalidation).
  std::span<const uint64_t> take_lost();
  // For every incomplete frame whose newest fragment is older than `quiet_ns` and that was not NACKed within
  // `renack_ns`: the fragments still needed (missing data first, then parity), the deficit and `spare` more
  // where that many are missing. One spare: a NACK usually has time for one round trip before the frame's
  // deadline, and on a bursty link the retransmission itself may be lost; one fragment more per NACK cut the
  // frames lost at 5 % loss in bursts of 4 from 14 to 10 in 12,000 (tests/simulated_channel_test.cpp).
  template <typename Need>  // void(uint64_t frame_id, int block, int index)
  void missing(int64_t now_ns, int64_t quiet_ns, int64_t renack_ns, Need&& need, int spare = 1) {
    // A plain function pointer and context rather than std::function: this runs every tick, and a capturing
    // lambda in a std::function may allocate.
    missing_impl(
        now_ns, quiet_ns, renack_ns, spare,
        [](void* context, uint64_t frame_id, int block, int index) {
          (*static_cast<std::remove_reference_t<Need>*>(context))(frame_id, block, index);
        },
        &need);
  }

  const AssemblerStats& stats() const { return stats_; }
  uint64_t next_frame_id() const { return next_id_; }

 private:
  struct Slot {
    bool used = false;
    bool complete = false;
    uint64_t frame_id = 0;
    wire::VideoFragment first{};
    size_t body = 0;  // this frame's fragment body bytes
    int64_t first_arrival_ns = 0, last_arrival_ns = 0, last_nack_ns = 0, complete_ns = 0, last_send_ns = 0;
    int blocks_complete = 0, fec_recovered = 0, retransmitted = 0;
    std::vector<uint8_t> shards;   // block_count x 255 x body
    std::vector<uint8_t> present;  // block_count x 255
    std::vector<int> received;     // per block
    std::vector<int> data_count, parity_count;
  };
  void missing_impl(int64_t now_ns, int64_t quiet_ns, int64_t renack_ns, int spare,
                    void (*need)(void*, uint64_t, int, int), void* context);
  Slot* slot_for(uint64_t frame_id);
  Slot* allocate(uint64_t frame_id);
  void complete_block(Slot& s, int block);
  void declare_lost(Slot& s);

  size_t body_;  // the largest fragment body
  int64_t deadline_ns_;
  std::vector<Slot> slots_;
  uint64_t next_id_ = 0;  // the next frame to deliver
  bool started_ = false;
  std::vector<uint64_t> lost_, handed_;
  std::vector<uint64_t> skip_;  // ids at or beyond next_id_ already declared lost: never delivered
  std::vector<uint8_t> output_;
  AssembledFrame out_;
  AssemblerStats stats_;
};

}  // namespace kairo
