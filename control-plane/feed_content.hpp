#pragma once
// A node's whole feed (docs/control-api.md "Node feed") as a replica last knew it, with the order key of each
// session beside it: a change made through the replica knows what it changed, so it moves this to the next
// version in memory (NodeFeedHub::changed) instead of the feed being read again. Includes the generated
// protobuf header: for the few .cpp files that build or read feeds.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control-plane/proto/control.pb.h"

namespace kairo::control {

// One change to a node's feed, as data: this replica applies it to the feed it keeps, and carries it in the
// change's announcement so that the other replicas apply it to theirs (NodeFeedHub, feed_announcement.hpp)
// instead of reading the feed again.
struct FeedChange {
  enum class Kind : char { kAdd = '+', kRemove = '-', kRunning = 'r' };
  Kind kind = Kind::kRemove;
  std::string session_id;
  v1::NodeSession session;  // kAdd: the session as the feed shows it
  std::string order_key;    // kAdd: its place in the feed's order (FeedContent::order)
};

struct FeedContent {
  v1::NodeFeed feed;  // changed = true; its cursor is `version` as text
  int64_t version = 0;
  // By session, as in feed.sessions(): "<created_at as PostgreSQL prints it>|<id>", the feed's order.
  std::vector<std::string> order;

  // A session placed on the node, where the feed's order puts it.
  void add(v1::NodeSession session, std::string order_key);
  // False when the feed has no such session.
  bool remove(const std::string& session_id);
  bool set_state(const std::string& session_id, const std::string& state);
  // False, changing nothing, when the change does not fit this feed (a session added twice, or removed or
  // reported that it lacks): then the feed kept is not the node's and must be read again.
  bool apply(const FeedChange& change);
};

}  // namespace kairo::control
