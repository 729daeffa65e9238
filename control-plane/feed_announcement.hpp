#pragma once
// How a change to a node's feed travels to the other replicas inside its announcement (NodeFeedHub, the
// kairo_node_feed channel), so that they move the feed they keep along instead of reading it again: with
// three replicas, two placements in three land on a node attached to another replica, and those reads were
// a third of the database's work (issue 14). As text of [A-Za-z0-9_-] only (safe in a NOTIFY payload and in
// the array literal that carries a batch of them):
//   "-<session id>"  ended or failed: out of the feed
//   "r<session id>"  reported running
//   "+<sealed>"      placed: the session as the feed shows it, with its place in the feed's order.
// A placed session carries its key, a secret, and NOTIFY's channels have no access control (any role on the
// database may LISTEN): it is sealed (XChaCha20-Poly1305, libsodium) under a key every replica derives from
// the token signing key they share, with the node and the feed version as associated data, so it opens only
// as the change it was made for. A change that cannot be read (another key during a key rotation, a newer
// replica's format) is heard as a change of unknown content: the feed is read, as before.
#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "control-plane/feed_content.hpp"

namespace kairo::control {

class FeedAnnouncementCodec {
 public:
  // `key`: 32 bytes, the same on every replica (AccessTokens::derived_key); empty: placed sessions are not
  // carried (the others read them).
  explicit FeedAnnouncementCodec(const std::string& key);
  // Empty when the change is not carried (a placed session without a key, or too large for a payload).
  std::string encode(int64_t node, int64_t version, const FeedChange& change) const;
  // nullopt when `text` is not a change this codec can read for that node and version.
  std::optional<FeedChange> decode(int64_t node, int64_t version, std::string_view text) const;

  static constexpr size_t kMaxEncoded = 3000;  // of PostgreSQL's 8000 bytes a payload

 private:
  bool sealing_ = false;
  std::array<unsigned char, 32> key_{};
  // Nonces: a prefix drawn once and a counter (no random draw, a system call, per placement).
  std::array<unsigned char, 16> nonce_prefix_{};
  mutable std::atomic<uint64_t> nonce_counter_{0};
};

}  // namespace kairo::control
