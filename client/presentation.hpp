#pragma once
// What the client may show, and what its display showed. A frame decoded after a lost one was predicted
// from a picture the decoder never had: it decodes without error into a corrupted image. So the reference
// chain is tracked by frame id: a gap in the ids (a frame the transport gave up, or one the node never sent)
// or a frame that failed to decode breaks it. A keyframe (it references nothing before it) repairs it, and so
// does a repair frame predicted only from frames before the first broken one (the encoder invalidated the
// rest: AccessUnit::repairs_from), and so does the end of an intra-refresh wave that began after the last
// missing or broken frame (AccessUnit::refreshed_from). Frames from a broken chain are decoded (the decoder's
// state stays in step) but never shown; the display holds the last good frame meanwhile. The display is a
// clock of slots at the session's frame rate: a slot shows a new correct frame when one was decoded since the
// previous slot, otherwise it holds (repeats) the last one, and consecutive held slots are a freeze. Pure
// logic: the caller passes the clock.
#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace kairo {

class ReferenceChain {
 public:
  enum class Verdict { kShow, kBroken };
  // Every frame the decoder was given, in order; `decoded`: it produced a picture without error;
  // `repairs_from`: the frame's metadata says it predicts only from frames before that id; `refreshed_from`:
  // it ends an intra-refresh wave that began at that id.
  Verdict on_frame(uint64_t frame_id, bool keyframe, bool decoded,
                   std::optional<uint64_t> repairs_from = std::nullopt,
                   std::optional<uint64_t> refreshed_from = std::nullopt);
  bool broken() const { return broken_; }
  // The first frame of the current break (what the client asks the node to recover from); 0 before the first
  // keyframe (only a keyframe helps then).
  uint64_t first_broken() const { return first_broken_; }
  uint64_t repairs() const { return repairs_; }  // breaks repaired without a keyframe (either way)
  // Why the chain is broken (for the log), or empty.
  const std::string& reason() const { return reason_; }
  uint64_t frames_refused() const { return refused_; }  // decoded from a broken chain, not shown
  uint64_t breaks() const { return breaks_; }

 private:
  std::optional<uint64_t> next_id_;
  void break_at(uint64_t first_bad, std::string reason);
  bool broken_ = true;  // nothing to predict from until the first keyframe
  bool seen_keyframe_ = false;
  uint64_t first_broken_ = 0;
  std::optional<uint64_t> last_bad_;  // the newest frame that never arrived or did not decode
  std::string reason_ = "waiting for the first keyframe";
  uint64_t refused_ = 0, breaks_ = 0, repairs_ = 0;
};

struct DisplayTotals {
  uint64_t slots = 0;            // display slots since the first frame was shown
  uint64_t slots_new_frame = 0;  // slots that showed a new correct frame (frames_displayed_correct)
  uint64_t slots_held = 0;       // slots that repeated the last good frame (frames_held)
  double frozen_ms_total = 0, frozen_ms_longest = 0;  // runs of held slots
};

class DisplayClock {
 public:
  // Slots every `period_ns`; the first at `first_frame_ns + offset_ns` (the display's phase against the
  // stream: a frame decoded up to `offset_ns` after its slot's start still makes the next slot).
  explicit DisplayClock(int64_t period_ns, int64_t offset_ns = 0);
  // A correct frame ready to show at `ready_ns` (frames arrive in order).
  void on_frame_ready(int64_t ready_ns);
  // Accounts every slot that has begun by `now_ns`.
  void advance(int64_t now_ns);
  DisplayTotals totals() const { return totals_; }
  // How far from where they should be in their slots frames become ready (median of the last 16 new
  // frames): positive when they are early (waiting longer than needed to be shown), negative when they
  // arrive so close to the slot's end that their late tail misses it. Where they should be is early in the
  // slot, not its middle: a frame's lateness has a long tail (a lost pose, a render or decode slowed by the
  // machine) and its earliness a short one, so the median frame is ready the early spread (measured) and
  // 3 ms after the previous slot began, at least 12 ms and at most half a slot after. The node moves
  // its render clock by it (render on the client's clock); 0 until 8 frames were seen.
  int64_t phase_error_ns() const;

 private:
  void close_slot(bool new_frame);
  int64_t target_margin_ns(int64_t early_spread_ns) const;
  int64_t period_ns_, offset_ns_;
  std::optional<int64_t> next_slot_ns_;
  uint64_t ready_since_slot_ = 0;
  uint64_t held_run_ = 0;
  DisplayTotals totals_;
  std::array<int64_t, 16> margins_{};  // slot boundary - ready time of the newest frames
  size_t margin_count_ = 0;
};

}  // namespace kairo
