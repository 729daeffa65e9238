#pragma once
// Authenticated encryption of every datagram with the session key (libsodium ChaCha20-Poly1305, IETF).
// Nonce = direction byte || 3 zero bytes || 64-bit sequence: unique for the key's lifetime because each
// direction's sequence only grows, and the two directions can never collide. The receiver's sliding
// window rejects replays and datagrams too old to matter, after (never before) authentication.
#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "streaming/wire.hpp"

namespace kairo {

struct SessionKey {
  std::array<uint8_t, 32> bytes{};
  static SessionKey random();
  static SessionKey from_hex(const std::string& hex);  // throws kairo::Error (invalid input)
  std::string to_hex() const;
};

// The 32-bit id in every datagram header for a control-plane session id (32 hex digits): its first eight
// digits. Throws kairo::Error (invalid input) for anything else.
uint32_t udp_session_id(const std::string& session_id);

class DatagramSealer {
 public:
  DatagramSealer(const SessionKey& key, uint32_t session_id, wire::Direction direction);
  // Writes header + ciphertext + tag into `out`; returns the datagram size. `out` needs
  // kHeaderSize + payload.size() + kTagSize bytes. No allocation.
  size_t seal(wire::PacketType type, std::span<const uint8_t> payload, std::span<uint8_t> out);
  uint64_t next_sequence() const { return next_sequence_; }

 private:
  SessionKey key_;
  uint32_t session_id_;
  wire::Direction direction_;
  uint64_t next_sequence_ = 1;
};

enum class OpenResult { kOk, kMalformed, kWrongSession, kForged, kReplayed, kStale };
const char* open_result_name(OpenResult r);

class DatagramOpener {
 public:
  static constexpr uint64_t kWindow = 4096;  // datagrams older than this many sequences are stale

  DatagramOpener(const SessionKey& key, uint32_t session_id, wire::Direction expected_direction);
  // Authenticates and decrypts; on kOk fills `header` and writes the payload into `plaintext` (which needs
  // datagram.size() - kHeaderSize - kTagSize bytes), setting `plaintext_size`. Cheap rejections first.
  OpenResult open(std::span<const uint8_t> datagram, wire::Header& header, std::span<uint8_t> plaintext,
                  size_t& plaintext_size);
  uint64_t count(OpenResult r) const { return counts_[static_cast<size_t>(r)]; }

 private:
  bool seen(uint64_t sequence) const;
  void mark(uint64_t sequence);

  SessionKey key_;
  uint32_t session_id_;
  wire::Direction direction_;
  uint64_t highest_ = 0;
  std::array<uint64_t, kWindow / 64> window_{};  // bit i of sequence s lives at (s % kWindow)
  std::array<uint64_t, 6> counts_{};
};

}  // namespace kairo
