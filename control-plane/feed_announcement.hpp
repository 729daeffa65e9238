#pragma once
// How a change to a node's feed travels to the other replicas inside its announcement (NodeFeedHub, the
// kairo_node_feed channel), so that they move the feed they keep along instead of reading it again: with
// three replicas, two placements in three land on a node attached to another replica, and each was a read
// of the node's whole feed (issue 14). As text of [A-Za-z0-9_-] only (safe in a NOTIFY payload and in
// the array literal that carries a batch of them), a kind and the change sealed:
//   "-<sealed>"  ended or failed: the session's id, out of the feed
//   "r<sealed>"  reported running: the session's id
//   "+<sealed>"  placed: the session as the feed shows it, with its place in the feed's order.
// Sealed (XChaCha20-Poly1305, libsodium) under a key every replica derives from the token signing key they
// share, with the node and the feed version as associated data, so a change opens only as the change of that
// node and version it was made for. Why: a placed session carries its key, a secret; and NOTIFY's channels
// have no access control (any role that can connect to the database may LISTEN, and NOTIFY), so a change
// taken on trust would let such a role rewrite what a replica tells its nodes. A change that cannot be opened
// (another key during a key rotation, a forged or damaged one, a newer replica's format) is heard as a change
// of unknown content: the feed is read, as before.
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
  // `key`: 32 bytes, the same on every replica (AccessTokens::derived_key); empty: no change is carried
  // (the others read the feed).
  explicit FeedAnnouncementCodec(const std::string& key);
  // Empty when the change is not carried (no key, a session id not of this control plane's shape, or too
  // large for a payload).
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
