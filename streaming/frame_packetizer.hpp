#pragma once
// Sender side of a video stream: splits an access unit into fixed-size data fragments, adds Reed-Solomon
// parity per block (at most 255 fragments per block, as GF(2^8) allows; big keyframes span several blocks),
// and keeps every fragment of the last frames ready to retransmit on NACK.
// Buffers grow to the largest frame seen and are then reused: no allocation per frame in steady state.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "streaming/wire.hpp"

namespace kairo {

struct FrameInfo {
  uint64_t frame_id = 0;
  uint64_t pose_id = 0;
  int64_t pose_time_ns = 0;
  int64_t capture_time_ns = 0;
  uint8_t stream = 0;
  bool keyframe = false;
  std::optional<uint64_t> repairs_from{};  // a repair frame (AccessUnit::repairs_from)
};

// Blocks of at most 64 data fragments: decoding inverts a k x k matrix (O(k^3)), which at k = 200 costs tens
// of milliseconds; at 64 it is well under one. Big frames span several interleaved blocks instead.
constexpr int kMaxDataPerBlock = 64;

class FramePacketizer {
 public:
  explicit FramePacketizer(size_t mtu = wire::kDefaultMtu, int frames_kept = 8);

  // Packetizes one frame with parity = ceil(redundancy * data) per block (redundancy 0..1, capped by the
  // 255-fragment limit). Returns the number of fragments (data + parity) to send.
  int packetize(const FrameInfo& info, std::span<const uint8_t> access_unit, double redundancy);
  // Same, with the parity count of each block chosen by `parity_for(data_fragments)` (see FecPolicy), and
  // fragment bodies of `body_bytes` (0: the MTU's; else between wire::kMinFragmentBody and the MTU's).
  template <typename ParityFor>
  int packetize_with(const FrameInfo& info, std::span<const uint8_t> access_unit, ParityFor&& parity_for,
                     size_t body_bytes = 0) {
    parity_for_ = [&](int k) { return int(parity_for(k)); };
    const int n = packetize_impl(info, access_unit, body_bytes);
    parity_for_ = nullptr;
    return n;
  }

  // The payload (VideoFragment header + body) of fragment `index` of the last packetized frame, with its send
  // time stamped. Index order interleaves blocks so a burst loss spreads over them.
  std::span<const uint8_t> fragment(int index, int64_t send_time_ns);
  bool is_parity(int index) const;  // of the last packetized frame, in send order
  // A kept fragment of an earlier frame for retransmission: by frame, block, and index within the block.
  // Empty if the frame is no longer kept or the index does not exist, and (setting *suppressed) when the
  // same fragment went out again less than `min_interval_ns` ago or has been retransmitted `max_times`
  // already: a NACK repeated (or replayed) many times draws one retransmission, not one each.
  std::span<const uint8_t> retransmission(uint64_t frame_id, uint8_t stream, int block, int index,
                                          int64_t send_time_ns, int64_t min_interval_ns = 0,
                                          int max_times = 255, bool* suppressed = nullptr);

  // The (block, index) of every data fragment of a kept frame, up to out.size() of them; how many were
  // written (0: the frame is no longer kept). For a frame none of whose fragments arrived (a NACK of the
  // whole frame).
  size_t data_fragments(uint64_t frame_id, uint8_t stream, std::span<std::pair<uint8_t, uint8_t>> out) const;
  // When the last of a kept frame's fragments was first sent, once all were; nullopt before, or when the
  // frame is no longer kept. (A NACK sooner than a round trip after it was sent before the client could
  // have seen the whole frame.)
  std::optional<int64_t> sent_completely_at(uint64_t frame_id, uint8_t stream) const;

  // The largest fragment body (the MTU's): what the receiver's assembler is told.
  size_t fragment_body_bytes() const { return body_bytes_; }
  // The payload (VideoFragment header + body) of each fragment of the last packetized frame (of the largest
  // before the first).
  size_t payload_bytes() const {
    return (current_ ? current_->body : body_bytes_) + wire::VideoFragment::kSize;
  }

 private:
  struct Block {
    int first_shard = 0;  // in the frame's data shard numbering
    int data = 0;
    int parity = 0;
  };
  struct KeptFrame {
    FrameInfo info;
    uint32_t frame_bytes = 0;
    size_t body = 0;  // bytes of each fragment's body
    std::vector<Block> blocks;
    std::vector<uint8_t> payloads;          // fragments by block, body + header each
    std::vector<int> order;                 // send position -> (block << 8) | index
    std::vector<int64_t> retransmitted_ns;  // by send position: when it last went out again (0: never)
    std::vector<uint8_t> retransmissions;   // by send position: how often
    int count = 0;
    int sent = 0;              // fragments sent (first time), in send order
    int64_t last_sent_ns = 0;  // when the last of them went
  };
  std::span<uint8_t> stamp(KeptFrame& frame, int position, int64_t send_time_ns, bool retransmission);
  static uint8_t repairs_back(const FrameInfo& info);
  int packetize_impl(const FrameInfo& info, std::span<const uint8_t> access_unit, size_t body_bytes);
  std::function<int(int)> parity_for_;

  size_t mtu_;
  size_t body_bytes_;
  std::vector<KeptFrame> kept_;  // ring of the last frames
  size_t next_ = 0;
  KeptFrame* current_ = nullptr;
};

}  // namespace kairo
