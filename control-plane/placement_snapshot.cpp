#include "control-plane/placement_snapshot.hpp"

#include <algorithm>
#include <tuple>

namespace kairo::control {

namespace {
bool contains(const std::vector<std::string>& values, std::string_view value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}
}  // namespace

bool PlacementSnapshot::refresh_due(int64_t now_ns) const {
  std::lock_guard lock(mutex_);
  return !valid_ || now_ns - read_at_ns_ > max_age_ns_ / 2;
}

bool PlacementSnapshot::usable(int64_t now_ns) const {
  std::lock_guard lock(mutex_);
  return valid_ && now_ns - read_at_ns_ <= max_age_ns_;
}

uint64_t PlacementSnapshot::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

void PlacementSnapshot::install(Fleet fleet, int64_t read_start_ns, uint64_t generation) {
  std::lock_guard lock(mutex_);
  if (generation != generation_) return;
  fleet_ = std::move(fleet);
  read_at_ns_ = read_start_ns;
  valid_ = true;
}

void PlacementSnapshot::drop() {
  std::lock_guard lock(mutex_);
  valid_ = false;
  ++generation_;
}

std::optional<int64_t> PlacementSnapshot::choose(const PlacementWant& want, int64_t now_ns) {
  std::lock_guard lock(mutex_);
  if (!valid_ || now_ns - read_at_ns_ > max_age_ns_) return std::nullopt;
  const auto in_catalogue = fleet_.catalogue.find(std::string(want.scene));
  const std::string* newest = in_catalogue == fleet_.catalogue.end() ? nullptr : &in_catalogue->second;
  // The database's order (fleet_service.cpp, kCandidateOrder): holders first, then the fill ratio computed
  // as it computes it, then load, then id.
  const auto key = [&](const Node& n) {
    const bool holds = newest == nullptr || contains(n.cached_scenes, *newest);
    return std::make_tuple(!holds, double(n.active) / double(std::max(n.capacity, 1)), n.load, n.id);
  };
  Node* best = nullptr;
  for (Node& n : fleet_.nodes) {
    if (n.active >= n.capacity || (want.webrtc && !n.webrtc) || !contains(n.codecs, want.codec)) continue;
    if (newest == nullptr && !contains(n.scenes, want.scene)) continue;
    if (best == nullptr || key(n) < key(*best)) best = &n;
  }
  if (best == nullptr) return std::nullopt;
  ++best->active;
  return best->id;
}

void PlacementSnapshot::missed(int64_t node) {
  std::lock_guard lock(mutex_);
  for (Node& n : fleet_.nodes)
    if (n.id == node) n.active = n.capacity;
}

}  // namespace kairo::control
