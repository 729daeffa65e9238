#include "streaming/frame_packetizer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "streaming/reed_solomon.hpp"

namespace kairo {

FramePacketizer::FramePacketizer(size_t mtu, int frames_kept)
    : mtu_(mtu),
      body_bytes_(mtu - wire::kHeaderSize - wire::kTagSize - wire::VideoFragment::kSize),
      kept_(size_t(frames_kept)) {
  if (mtu < 256 || mtu > wire::kMaxDatagram)
    throw std::invalid_argument("MTU must be between 256 and 1472 bytes");
}

int FramePacketizer::packetize(const FrameInfo& info, std::span<const uint8_t> au, double redundancy) {
  redundancy = std::clamp(redundancy, 0.0, 1.0);
  return packetize_with(info, au, [redundancy](int k) { return int(std::ceil(redundancy * k)); });
}

int FramePacketizer::packetize_impl(const FrameInfo& info, std::span<const uint8_t> au, size_t body_bytes) {
  if (au.empty()) throw std::invalid_argument("empty access unit");
  const size_t body = body_bytes == 0 ? body_bytes_ : body_bytes;
  if (body > body_bytes_ || (body != body_bytes_ && body < wire::kMinFragmentBody))
    throw std::invalid_argument("fragment body outside what the MTU and the receiver allow");
  const size_t max_blocks = 255;
  const size_t shards = (au.size() + body - 1) / body;
  const size_t block_count = (shards + kMaxDataPerBlock - 1) / kMaxDataPerBlock;
  if (block_count > max_blocks) throw std::invalid_argument("access unit too large for one frame");
  KeptFrame& f = kept_[next_];
  next_ = (next_ + 1) % kept_.size();
  current_ = &f;
  f.info = info;
  f.frame_bytes = uint32_t(au.size());
  f.body = body;
  f.blocks.clear();
  const size_t per_block = (shards + block_count - 1) / block_count;
  int total = 0;
  for (size_t b = 0, first = 0; first < shards; ++b, first += per_block) {
    const int data = int(std::min(per_block, shards - first));
    const int parity = std::clamp(parity_for_(data), 0, 255 - data);
    f.blocks.push_back(Block{.first_shard = int(first), .data = data, .parity = parity});
    total += data + parity;
  }
  f.count = total;
  f.sent = 0;
  f.last_sent_ns = 0;
  const size_t payload = body + wire::VideoFragment::kSize;
  f.payloads.resize(size_t(total) * payload);  // grows to the largest frame, then stays
  f.order.resize(size_t(total));
  f.retransmitted_ns.assign(size_t(total),
                            0);  // capacity kept: no allocation once the largest frame was seen
  f.retransmissions.assign(size_t(total), 0);

  // Lay out fragments block by block, fill data bodies, then compute parity per block.
  int slot = 0;
  std::vector<int>& order = f.order;
  int block_start_slot[256];
  for (size_t b = 0; b < f.blocks.size(); ++b) {
    const Block& block = f.blocks[b];
    block_start_slot[b] = slot;
    for (int i = 0; i < block.data + block.parity; ++i, ++slot) {
      uint8_t* out = &f.payloads[size_t(slot) * payload + wire::VideoFragment::kSize];
      if (i < block.data) {
        const size_t offset = size_t(block.first_shard + i) * body;
        const size_t n = std::min(body, au.size() - offset);
        std::memcpy(out, au.data() + offset, n);
        std::memset(out + n, 0, body - n);
      }
    }
    const uint8_t* data[kMaxShards];
    uint8_t* parity[kMaxShards];
    for (int i = 0; i < block.data; ++i)
      data[i] = &f.payloads[size_t(block_start_slot[b] + i) * payload + wire::VideoFragment::kSize];
    for (int i = 0; i < block.parity; ++i)
      parity[i] =
          &f.payloads[size_t(block_start_slot[b] + block.data + i) * payload + wire::VideoFragment::kSize];
    rs_encode(block.data, block.parity, body, data, parity);
  }
  // Send order interleaves the blocks (round robin), so that a burst hits each block a little.
  int position = 0;
  for (int i = 0; position < total; ++i)
    for (size_t b = 0; b < f.blocks.size(); ++b)
      if (i < f.blocks[b].data + f.blocks[b].parity) order[size_t(position++)] = int(b << 8) | i;
  return total;
}

std::span<uint8_t> FramePacketizer::stamp(KeptFrame& f, int position, int64_t send_time_ns,
                                          bool retransmission) {
  const int code = f.order[size_t(position)];
  const int b = code >> 8, i = code & 255;
  if (!retransmission && position >= f.sent) {
    f.sent = position + 1;
    f.last_sent_ns = send_time_ns;
  }
  const Block& block = f.blocks[size_t(b)];
  int slot = 0;
  for (int prior = 0; prior < b; ++prior)
    slot += f.blocks[size_t(prior)].data + f.blocks[size_t(prior)].parity;
  slot += i;
  const size_t payload = f.body + wire::VideoFragment::kSize;
  uint8_t* p = &f.payloads[size_t(slot) * payload];
  wire::write_video_fragment(
      wire::VideoFragment{.frame_id = f.info.frame_id,
                          .pose_id = f.info.pose_id,
                          .pose_time_ns = f.info.pose_time_ns,
                          .capture_time_ns = f.info.capture_time_ns,
                          .send_time_ns = send_time_ns,
                          .frame_bytes = f.frame_bytes,
                          .fragment_index = uint16_t(i),
                          .data_count = uint16_t(block.data),
                          .parity_count = uint16_t(block.parity),
                          .fragment_bytes = uint16_t(f.body),
                          .stream = f.info.stream,
                          .flags = uint8_t((f.info.keyframe ? wire::VideoFragment::kKeyframe : 0) |
                                           (retransmission ? wire::VideoFragment::kRetransmission : 0)),
                          .block = uint8_t(b),
                          .block_count = uint8_t(f.blocks.size()),
                          .repairs_back = repairs_back(f.info)},
      std::span<uint8_t, wire::VideoFragment::kSize>(p, wire::VideoFragment::kSize));
  return {p, payload};
}

// How far back a repair frame's first unused reference is (wire::VideoFragment::repairs_back); 0 when it
// is not a repair or the distance does not fit.
uint8_t FramePacketizer::repairs_back(const FrameInfo& info) {
  if (!info.repairs_from || *info.repairs_from >= info.frame_id) return 0;
  const uint64_t back = info.frame_id - *info.repairs_from;
  return back <= 255 ? uint8_t(back) : 0;
}

std::span<const uint8_t> FramePacketizer::fragment(int index, int64_t send_time_ns) {
  if (current_ == nullptr || index < 0 || index >= current_->count) throw std::out_of_range("fragment index");
  return stamp(*current_, index, send_time_ns, false);
}

bool FramePacketizer::is_parity(int index) const {
  if (current_ == nullptr || index < 0 || index >= current_->count) throw std::out_of_range("fragment index");
  const int code = current_->order[size_t(index)];
  return (code & 255) >= current_->blocks[size_t(code >> 8)].data;
}

std::span<const uint8_t> FramePacketizer::retransmission(uint64_t frame_id, uint8_t stream, int block,
                                                         int index, int64_t send_time_ns,
                                                         int64_t min_interval_ns, int max_times,
                                                         bool* suppressed) {
  if (suppressed) *suppressed = false;
  for (KeptFrame& f : kept_) {
    if (f.count == 0 || f.info.frame_id != frame_id || f.info.stream != stream) continue;
    if (block < 0 || size_t(block) >= f.blocks.size() || index < 0 ||
        index >= f.blocks[size_t(block)].data + f.blocks[size_t(block)].parity)
      return {};
    for (int position = 0; position < f.count; ++position) {
      if (f.order[size_t(position)] != ((block << 8) | index)) continue;
      int64_t& last = f.retransmitted_ns[size_t(position)];
      uint8_t& times = f.retransmissions[size_t(position)];
      if (times >= max_times || (last != 0 && send_time_ns - last < min_interval_ns)) {
        if (suppressed) *suppressed = true;
        return {};
      }
      last = send_time_ns;
      times = uint8_t(std::min(255, times + 1));
      return stamp(f, position, send_time_ns, true);
    }
  }
  return {};
}

std::optional<int64_t> FramePacketizer::sent_completely_at(uint64_t frame_id, uint8_t stream) const {
  for (const KeptFrame& f : kept_)
    if (f.count > 0 && f.info.frame_id == frame_id && f.info.stream == stream)
      return f.sent == f.count ? std::optional<int64_t>(f.last_sent_ns) : std::nullopt;
  return std::nullopt;
}

size_t FramePacketizer::data_fragments(uint64_t frame_id, uint8_t stream,
                                       std::span<std::pair<uint8_t, uint8_t>> out) const {
  for (const KeptFrame& f : kept_) {
    if (f.count == 0 || f.info.frame_id != frame_id || f.info.stream != stream) continue;
    size_t n = 0;
    // Block by block, as a burst that took the whole frame took them all alike.
    for (size_t b = 0; b < f.blocks.size(); ++b)
      for (int i = 0; i < f.blocks[b].data && n < out.size(); ++i) out[n++] = {uint8_t(b), uint8_t(i)};
    return n;
  }
  return 0;
}

}  // namespace kairo
