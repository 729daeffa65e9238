#pragma once
// A replica's picture of the nodes a placement may choose from, so that a placement tries the best node with
// one single-row update instead of PostgreSQL scanning and sorting the whole fleet for each session (at 1,000
// nodes that scan was the largest single cost of a placement). Nomad's schedulers work this way: plan on a
// state snapshot, and let the plan applier check. Here the database's conditional update of the node's slot
// counter is the check: a stale picture costs a try on the next candidate, never an overfilled node.
//
// The picture is good for `max_age` after it was read and is read again from half that age on, while the
// placements meanwhile go on choosing from it (a read takes a few milliseconds under load: placements that
// waited for it, or let the database choose meanwhile, were the placement's largest cost). It is dropped at
// once when something that decides a node's eligibility changes (a node registered, up or down, drained, its
// capacity, scenes, encoders or cache; the catalogue): through this replica by a direct call, through any
// other by the announcement on kairo_placement_inputs (migration 011). Between reads it counts this replica's
// own placements, so that concurrent placements spread over the fleet as the database's order would spread
// them.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kairo::control {

// What a session needs of its node.
struct PlacementWant {
  std::string_view scene, codec;
  bool webrtc = false;  // the node must take browser sessions
};

class PlacementSnapshot {
 public:
  // One live, undrained node as read.
  struct Node {
    int64_t id = 0;
    int active = 0, capacity = 0;
    double load = 0;
    bool webrtc = false;  // has a signalling URL
    std::vector<std::string> scenes, codecs, cached_scenes;
  };
  struct Fleet {
    std::vector<Node> nodes;
    std::unordered_map<std::string, std::string> catalogue;  // scene name -> its newest version's SHA-256
  };

  explicit PlacementSnapshot(int64_t max_age_ns) : max_age_ns_(max_age_ns) {}

  // A read is due: never read, dropped since, or older than half of max_age.
  bool refresh_due(int64_t now_ns) const;
  // choose() may offer a node: read, not dropped since, and at most max_age old.
  bool usable(int64_t now_ns) const;
  // Before reading the fleet: what install() needs to know whether it was dropped meanwhile.
  uint64_t generation() const;
  // Takes a read that started at `read_start_ns` with generation() `generation`; a read that a drop
  // overtook is thrown away (it may predate the change).
  void install(Fleet fleet, int64_t read_start_ns, uint64_t generation);
  void drop();

  // The best node for `want` that the picture shows with a free slot, its slot counted as taken; nullopt when
  // the picture is stale or shows none. Best: holds the catalogue scene's newest version (a node without it
  // first fetches it), then least filled, then least loaded, then lowest id (as the database orders them).
  std::optional<int64_t> choose(const PlacementWant& want, int64_t now_ns);
  // The try on `node` failed (full, held by another placement, or no longer eligible): not offered again
  // until the next read.
  void missed(int64_t node);

 private:
  mutable std::mutex mutex_;
  const int64_t max_age_ns_;
  Fleet fleet_;
  int64_t read_at_ns_ = 0;
  bool valid_ = false;
  uint64_t generation_ = 0;
};

}  // namespace kairo::control
