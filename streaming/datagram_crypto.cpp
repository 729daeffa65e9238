#include "streaming/datagram_crypto.hpp"

#include <sodium.h>

#include <stdexcept>

#include <mutex>

#include "core/error.hpp"

namespace kairo {
namespace {

void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) throw_runtime("libsodium failed to initialise");
  });
}

std::array<uint8_t, crypto_aead_chacha20poly1305_IETF_NPUBBYTES> nonce(wire::Direction direction,
                                                                       uint64_t sequence) {
  std::array<uint8_t, crypto_aead_chacha20poly1305_IETF_NPUBBYTES> n{};
  n[0] = static_cast<uint8_t>(direction) + 1;
  wire::put_u64(&n[4], sequence);
  return n;
}

}  // namespace

SessionKey SessionKey::random() {
  ensure_sodium();
  SessionKey key;
  crypto_aead_chacha20poly1305_ietf_keygen(key.bytes.data());
  return key;
}

uint32_t udp_session_id(const std::string& session_id) {
  if (session_id.size() < 8 || session_id.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw_invalid_input("a session id is hexadecimal digits (at least 8)");
  return uint32_t(std::stoul(session_id.substr(0, 8), nullptr, 16));
}

SessionKey SessionKey::from_hex(const std::string& hex) {
  ensure_sodium();
  SessionKey key;
  size_t length = 0;
  if (hex.size() != 64 ||
      sodium_hex2bin(key.bytes.data(), key.bytes.size(), hex.data(), hex.size(), nullptr, &length, nullptr) !=
          0 ||
      length != 32)
    throw_invalid_input("a session key is 64 hexadecimal digits");
  return key;
}

std::string SessionKey::to_hex() const {
  std::string hex(65, '\0');
  sodium_bin2hex(hex.data(), hex.size(), bytes.data(), bytes.size());
  hex.pop_back();
  return hex;
}

DatagramSealer::DatagramSealer(const SessionKey& key, uint32_t session_id, wire::Direction direction)
    : key_(key), session_id_(session_id), direction_(direction) {
  ensure_sodium();
}

size_t DatagramSealer::seal(wire::PacketType type, std::span<const uint8_t> payload, std::span<uint8_t> out) {
  const size_t total = wire::kHeaderSize + payload.size() + wire::kTagSize;
  if (out.size() < total) throw std::length_error("DatagramSealer::seal: output buffer too small");
  const uint64_t sequence = next_sequence_++;
  wire::write_header(
      wire::Header{.type = type, .direction = direction_, .session_id = session_id_, .sequence = sequence},
      out.first<wire::kHeaderSize>());
  const auto n = nonce(direction_, sequence);
  unsigned long long tag_size = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(
      out.data() + wire::kHeaderSize, out.data() + wire::kHeaderSize + payload.size(), &tag_size,
      payload.data(), payload.size(), out.data(), wire::kHeaderSize, nullptr, n.data(), key_.bytes.data());
  return total;
}

const char* open_result_name(OpenResult r) {
  switch (r) {
    case OpenResult::kOk:
      return "ok";
    case OpenResult::kMalformed:
      return "malformed";
    case OpenResult::kWrongSession:
      return "wrong_session";
    case OpenResult::kForged:
      return "forged";
    case OpenResult::kReplayed:
      return "replayed";
    case OpenResult::kStale:
      return "stale";
  }
  return "?";
}

DatagramOpener::DatagramOpener(const SessionKey& key, uint32_t session_id, wire::Direction expected_direction)
    : key_(key), session_id_(session_id), direction_(expected_direction) {
  ensure_sodium();
}

bool DatagramOpener::seen(uint64_t s) const {
  return (window_[(s % kWindow) / 64] >> (s % 64)) & 1u;
}

void DatagramOpener::mark(uint64_t s) {
  if (s > highest_) {
    // Clear the slots the window slides over (they held sequences now too old to be accepted).
    const uint64_t advance = std::min<uint64_t>(s - highest_, kWindow);
    for (uint64_t i = 1; i <= advance; ++i) {
      const uint64_t slot = (highest_ + i) % kWindow;
      window_[slot / 64] &= ~(uint64_t(1) << (slot % 64));
    }
    highest_ = s;
  }
  window_[(s % kWindow) / 64] |= uint64_t(1) << (s % 64);
}

OpenResult DatagramOpener::open(std::span<const uint8_t> datagram, wire::Header& header,
                                std::span<uint8_t> plaintext, size_t& plaintext_size) {
  auto verdict = [&](OpenResult r) {
    ++counts_[static_cast<size_t>(r)];
    return r;
  };
  const auto parsed = wire::read_header(datagram);
  if (!parsed || parsed->direction != direction_ || datagram.size() > wire::kMaxDatagram)
    return verdict(OpenResult::kMalformed);
  if (parsed->session_id != session_id_) return verdict(OpenResult::kWrongSession);
  const uint64_t s = parsed->sequence;
  if (s == 0 || (highest_ >= kWindow && s <= highest_ - kWindow)) return verdict(OpenResult::kStale);
  if (s <= highest_ && seen(s)) return verdict(OpenResult::kReplayed);
  const size_t size = datagram.size() - wire::kHeaderSize - wire::kTagSize;
  if (plaintext.size() < size) return verdict(OpenResult::kMalformed);
  const auto n = nonce(direction_, s);
  if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
          plaintext.data(), nullptr, datagram.data() + wire::kHeaderSize, size,
          datagram.data() + wire::kHeaderSize + size, datagram.data(), wire::kHeaderSize, n.data(),
          key_.bytes.data()) != 0)
    return verdict(OpenResult::kForged);
  mark(s);  // only authenticated sequences move the window
  header = *parsed;
  plaintext_size = size;
  return verdict(OpenResult::kOk);
}

}  // namespace kairo
