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
};

}  // namespace kairo::control
