#pragma once
// Kairo's datagram wire format, defined once for node and client. Every datagram is
//   [ Header: 16 bytes, authenticated, in clear ][ payload: encrypted ][ 16-byte Poly1305 tag ]
// Little-endian throughout. The header is bound to the payload as AEAD associated data, so a receiver drops
// forged, tampered, truncated and replayed datagrams before looking at anything else.
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace kairo::wire {

constexpr uint8_t kVersion = 1;
constexpr uint8_t kLastPacketType = 12;
constexpr size_t kHeaderSize = 16;
constexpr size_t kTagSize = 16;
constexpr size_t kDefaultMtu = 1200;   // payload of one UDP datagram: clear of tunnel and VPN overheads
constexpr size_t kMaxDatagram = 1472;  // Ethernet MTU less IP and UDP headers: the receive buffer size
// A frame's fragments all have one body size, the MTU's or (small frames under loss: FecPolicy) smaller,
// down to this.
constexpr size_t kMinFragmentBody = 256;

enum class PacketType : uint8_t {
  kVideo = 1,            // a data or parity fragment of an encoded frame (server -> client)
  kPose = 2,             // client pose sample (client -> server)
  kReport = 3,           // receiver report (client -> server)
  kNack = 4,             // missing fragments of a frame (client -> server)
  kPing = 5,             // clock sync request (either direction)
  kPong = 6,             // clock sync reply
  kKeyframeRequest = 7,  // unrecoverable loss: ask for an IDR (client -> server)
  kInput = 8,            // controller input event (client -> server)
  kHand = 9,             // hand pose and grip (client -> server)
  kRoomState = 10,       // the room's members, shared objects and recent events (server -> client)
  kPathChallenge = 11,   // a new client address must echo this before it gets any stream (server -> client)
  kPathResponse = 12,    // the echo, from the address being validated (client -> server)
};

enum class Direction : uint8_t { kServerToClient = 0, kClientToServer = 1 };

struct Header {
  uint8_t version = kVersion;
  PacketType type = PacketType::kVideo;
  Direction direction = Direction::kServerToClient;
  uint8_t reserved = 0;
  uint32_t session_id = 0;
  uint64_t sequence = 0;  // per direction, strictly increasing: the AEAD nonce and the replay window's index
};

void write_header(const Header& header, std::span<uint8_t, kHeaderSize> out);
// Structural checks only (version, known type); authenticity is the AEAD's job.
std::optional<Header> read_header(std::span<const uint8_t> datagram);

// Inside a kVideo payload: which frame, which fragment, and everything the client needs to use the frame.
struct VideoFragment {
  uint64_t frame_id = 0;
  uint64_t pose_id = 0;
  int64_t pose_time_ns = 0;     // client clock: when the pose was sampled
  int64_t capture_time_ns = 0;  // server clock: render start
  int64_t send_time_ns = 0;     // server clock: when this fragment left
  uint32_t frame_bytes = 0;     // size of the access unit
  uint16_t fragment_index = 0;  // 0..data_count-1 data, then parity
  uint16_t data_count = 0;      // k: fragments carrying the access unit
  uint16_t parity_count = 0;    // m: Reed-Solomon parity fragments
  uint16_t fragment_bytes =
      0;               // every fragment of the frame carries this many bytes (the last is zero-padded)
  uint8_t stream = 0;  // 0: both eyes / left, 1: right
  uint8_t flags = 0;   // bit 0 keyframe, bit 1 retransmission
  uint8_t block = 0;   // FEC block of the frame (a block holds at most 255 fragments)
  uint8_t block_count = 1;
  // A repair frame (AccessUnit::repairs_from) predicts only from frames before frame_id - repairs_back
  // (0: not a repair, or from further back than 255 frames): the receiver may give up on the frames between
  // and deliver it at once (FrameAssembler::pop).
  uint8_t repairs_back = 0;
  static constexpr size_t kSize = 57;
  static constexpr uint8_t kKeyframe = 1, kRetransmission = 2;
};

// What a video datagram costs on the wire beyond its fragment's body: the header, the tag, the fragment
// header, and IPv4's and UDP's (what a finer cut of a frame pays per datagram: FecPolicy::cut_for).
constexpr size_t kIpv4AndUdpHeaders = 28;
constexpr size_t kVideoDatagramOverhead = kHeaderSize + kTagSize + VideoFragment::kSize + kIpv4AndUdpHeaders;

void write_video_fragment(const VideoFragment& f, std::span<uint8_t, VideoFragment::kSize> out);
// Refuses inconsistent fields (index beyond k+m, more than 255 fragments, zero sizes) with nullopt.
std::optional<VideoFragment> read_video_fragment(std::span<const uint8_t> payload);

// Little-endian helpers for the fixed layouts.
inline void put_u16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}
inline void put_u32(uint8_t* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}
inline void put_u64(uint8_t* p, uint64_t v) {
  std::memcpy(p, &v, 8);
}
inline void put_f32(uint8_t* p, float v) {
  std::memcpy(p, &v, 4);
}
inline float get_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint16_t get_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t get_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t get_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
static_assert(std::endian::native == std::endian::little, "wire helpers assume a little-endian host");

}  // namespace kairo::wire
