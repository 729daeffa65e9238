#include "streaming/wire.hpp"

namespace kairo::wire {

void write_header(const Header& h, std::span<uint8_t, kHeaderSize> out) {
  out[0] = h.version;
  out[1] = static_cast<uint8_t>(h.type);
  out[2] = static_cast<uint8_t>(h.direction);
  out[3] = 0;
  put_u32(&out[4], h.session_id);
  put_u64(&out[8], h.sequence);
}

std::optional<Header> read_header(std::span<const uint8_t> d) {
  if (d.size() < kHeaderSize + kTagSize) return std::nullopt;
  if (d[0] != kVersion || d[1] < 1 || d[1] > kLastPacketType || d[2] > 1 || d[3] != 0) return std::nullopt;
  return Header{.version = d[0],
                .type = static_cast<PacketType>(d[1]),
                .direction = static_cast<Direction>(d[2]),
                .reserved = 0,
                .session_id = get_u32(&d[4]),
                .sequence = get_u64(&d[8])};
}

void write_video_fragment(const VideoFragment& f, std::span<uint8_t, VideoFragment::kSize> out) {
  uint8_t* p = out.data();
  put_u64(p + 0, f.frame_id);
  put_u64(p + 8, f.pose_id);
  put_u64(p + 16, uint64_t(f.pose_time_ns));
  put_u64(p + 24, uint64_t(f.capture_time_ns));
  put_u64(p + 32, uint64_t(f.send_time_ns));
  put_u32(p + 40, f.frame_bytes);
  put_u16(p + 44, f.fragment_index);
  put_u16(p + 46, f.data_count);
  put_u16(p + 48, f.parity_count);
  put_u16(p + 50, f.fragment_bytes);
  p[52] = f.stream;
  p[53] = f.flags;
  p[54] = f.block;
  p[55] = f.block_count;
  p[56] = f.repairs_back;
}

std::optional<VideoFragment> read_video_fragment(std::span<const uint8_t> payload) {
  if (payload.size() < VideoFragment::kSize) return std::nullopt;
  const uint8_t* p = payload.data();
  VideoFragment f{.frame_id = get_u64(p),
                  .pose_id = get_u64(p + 8),
                  .pose_time_ns = int64_t(get_u64(p + 16)),
                  .capture_time_ns = int64_t(get_u64(p + 24)),
                  .send_time_ns = int64_t(get_u64(p + 32)),
                  .frame_bytes = get_u32(p + 40),
                  .fragment_index = get_u16(p + 44),
                  .data_count = get_u16(p + 46),
                  .parity_count = get_u16(p + 48),
                  .fragment_bytes = get_u16(p + 50),
                  .stream = p[52],
                  .flags = p[53],
                  .block = p[54],
                  .block_count = p[55],
                  .repairs_back = p[56]};
  const size_t body = payload.size() - VideoFragment::kSize;
  const uint64_t shards =
      f.fragment_bytes == 0 ? 0 : (uint64_t(f.frame_bytes) + f.fragment_bytes - 1) / f.fragment_bytes;
  if (f.data_count == 0 || f.data_count + f.parity_count > 255 ||
      f.fragment_index >= f.data_count + f.parity_count || f.fragment_bytes == 0 ||
      body != f.fragment_bytes || f.stream > 1 || (f.flags & ~3u) != 0 || f.frame_bytes == 0 ||
      f.block_count == 0 || f.block >= f.block_count || f.data_count > shards ||
      shards > uint64_t(f.block_count) * 255)
    return std::nullopt;
  return f;
}

}  // namespace kairo::wire
