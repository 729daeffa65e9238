#pragma once
// Receiver side of one video stream: collects fragments (in any order, duplicated or not), recovers lost data
// fragments with Reed-Solomon parity, and hands complete frames out strictly in frame order. A frame not
// complete by its deadline is declared lost (the caller then asks for a keyframe), and so are the frames
// still missing before a complete keyframe or repair frame that needs none of them; fragments of frames
// already delivered or declared lost are counted as late and dropped, never played.
// Memory is bounded: a fixed number of frames in progress, each slot's buffers grown once and reused; when
// all slots are busy the oldest frame in progress is declared lost to make room.
#include <array>
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
  // Times a keyframe or repair frame was delivered past frames still missing (they were given up).
  uint64_t gave_up_for_standalone = 0;
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
  // The next frame in order if it is complete; null otherwise. Frames declared lost are skipped (see lost()),
  // and given up before a complete frame that stands alone (a keyframe, or a repair frame predicting only
  // from frames delivered).
  const AssembledFrame* pop();
  // Frame ids declared lost since the last call (the caller asks for a keyframe or a reference invalidation).
  std::span<const uint64_t> take_lost();
  // For every incomplete frame whose newest fragment is older than `quiet_ns` and that was not NACKed within
  // `renack_ns`: the fragments still needed (missing data first, then parity), as many as the deficit. (One
  // spare fragment per NACK, against a lost retransmission, was measured and dropped: at 5 % loss in bursts
  // of 4, 150 simulated runs of 600 frames lost 99 frames without it and 101 with it, for 43 % more
  // retransmissions.)
  template <typename Need>  // void(uint64_t frame_id, int block, int index)
  void missing(int64_t now_ns, int64_t quiet_ns, int64_t renack_ns, Need&& need) {
    // A plain function pointer and context rather than std::function: this runs every tick, and a capturing
    // lambda in a std::function may allocate.
    missing_impl(
        now_ns, quiet_ns, renack_ns,
        [](void* context, uint64_t frame_id, int block, int index) {
          (*static_cast<std::remove_reference_t<Need>*>(context))(frame_id, block, index);
        },
        &need);
  }

  // Frames none of whose fragments arrived, below a frame whose first fragment arrived `quiet_ns` ago or
  // earlier (on a path that keeps order theirs would have come first), not asked for within `renack_ns`: the
  // caller NACKs each as a whole (the sender retransmits its data). Without it such a frame is only noticed
  // at the later frame's deadline, a frame interval and 30 ms after it began to arrive. Valid until the next
  // call; at most kUnseenAtOnce frames, from the oldest.
  static constexpr size_t kUnseenAtOnce = 8;
  std::span<const uint64_t> unseen(int64_t now_ns, int64_t quiet_ns, int64_t renack_ns);

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
  void missing_impl(int64_t now_ns, int64_t quiet_ns, int64_t renack_ns,
                    void (*need)(void*, uint64_t, int, int), void* context);
  Slot* slot_for(uint64_t frame_id);
  Slot* allocate(uint64_t frame_id);
  void complete_block(Slot& s, int block);
  void declare_lost(Slot& s);
  bool stands_alone(const Slot& s) const;
  void give_up_before_standalone();

  size_t body_;  // the largest fragment body
  int64_t deadline_ns_;
  std::vector<Slot> slots_;
  uint64_t next_id_ = 0;  // the next frame to deliver
  bool started_ = false;
  std::vector<uint64_t> lost_, handed_;
  std::vector<uint64_t> skip_;  // ids at or beyond next_id_ already declared lost: never delivered
  std::vector<uint8_t> output_;
  AssembledFrame out_;
  std::array<uint64_t, kUnseenAtOnce> unseen_{};
  struct UnseenAsked {
    bool used = false;
    uint64_t frame_id = 0;
    int64_t when_ns = 0;
  };
  std::array<UnseenAsked, 2 * kUnseenAtOnce> unseen_asked_{};  // a ring of the last asked for
  size_t unseen_asked_next_ = 0;
  AssemblerStats stats_;
};

}  // namespace kairo
