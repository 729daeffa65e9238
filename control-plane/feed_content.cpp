#include "control-plane/feed_content.hpp"

#include <algorithm>

namespace kairo::control {

void FeedContent::add(v1::NodeSession session, std::string order_key) {
  // PostgreSQL prints timestamps of one time zone so that their text sorts as their time does (fractions
  // without trailing zeros still compare right: '+' and '.' sort before digits).
  const auto at = std::upper_bound(order.begin(), order.end(), order_key);
  const int index = int(at - order.begin());
  order.insert(at, std::move(order_key));
  auto* sessions = feed.mutable_sessions();
  *sessions->Add() = std::move(session);
  for (int i = sessions->size() - 1; i > index; --i) sessions->SwapElements(i, i - 1);
}

bool FeedContent::remove(const std::string& session_id) {
  auto* sessions = feed.mutable_sessions();
  for (int i = 0; i < sessions->size(); ++i) {
    if (sessions->Get(i).session_id() != session_id) continue;
    for (int j = i; j + 1 < sessions->size(); ++j) sessions->SwapElements(j, j + 1);
    sessions->RemoveLast();
    order.erase(order.begin() + ptrdiff_t(i));
    return true;
  }
  return false;
}

bool FeedContent::set_state(const std::string& session_id, const std::string& state) {
  for (auto& s : *feed.mutable_sessions())
    if (s.session_id() == session_id) {
      s.set_state(state);
      return true;
    }
  return false;
}

bool FeedContent::apply(const FeedChange& change) {
  switch (change.kind) {
    case FeedChange::Kind::kAdd:
      if (std::any_of(feed.sessions().begin(), feed.sessions().end(),
                      [&](const v1::NodeSession& s) { return s.session_id() == change.session_id; }))
        return false;
      add(change.session, change.order_key);
      return true;
    case FeedChange::Kind::kRemove:
      return remove(change.session_id);
    case FeedChange::Kind::kRunning:
      return set_state(change.session_id, "running");
  }
  return false;
}

}  // namespace kairo::control
