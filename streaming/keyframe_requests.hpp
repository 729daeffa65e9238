#pragma once
// Which of a client's recovery requests to honour. A request names the first frame the client lost or could
// not decode. A keyframe repairs every loss before it; a repair frame (the encoder stopped referencing frames
// from some id on: VideoEncoder::invalidate_from) repairs the losses from that id up to itself. So a request
// for a frame one of them already covers is answered (the later frames of the same loss burst, or a request
// that crossed the repair in flight), and requests while a recovery is due merge into it, from the earliest
// frame named: one loss costs one recovery, at most one per round trip. Without this, each lost frame of a
// burst asked for its own keyframe, the large keyframes caused the next losses, and sessions sharing a link
// spiralled down together. Pure logic: no clock, no lock (the caller serialises).
#include <algorithm>
#include <cstdint>
#include <optional>

namespace kairo {

class KeyframeRequests {
 public:
  // A client's request; true when it makes a recovery due (false: answered already, or merged).
  bool on_request(uint64_t lost_frame_id) {
    ++received_;
    if (answered(lost_frame_id)) {
      ++answered_already_;
      return false;
    }
    const bool fresh = !due_;
    due_from_ = due_ ? std::min(due_from_, lost_frame_id) : lost_frame_id;
    due_ = true;
    return fresh;
  }
  // Once per due recovery: the first lost frame to recover from (the encoder invalidates from it, or makes
  // the next frame a keyframe).
  std::optional<uint64_t> take() {
    if (!due_) return std::nullopt;
    due_ = false;
    in_flight_ = true;
    in_flight_from_ = due_from_;
    return due_from_;
  }
  // Every frame the transport starts sending. A taken recovery replaced before it went out (the newest frame
  // replaces an unsent one) answers nothing: later requests are honoured again.
  void on_frame_sent(uint64_t frame_id, bool keyframe, std::optional<uint64_t> repairs_from = std::nullopt) {
    if (keyframe) {
      keyframe_sent_ = true;
      last_keyframe_ = frame_id;
    } else if (repairs_from) {
      repair_sent_ = true;
      repair_from_ = *repairs_from;
      repair_at_ = frame_id;
    }
    in_flight_ = false;
  }
  // The sender dropped a frame before it went out (replaced by a newer one, predicted from it): a recovery
  // from it is due without waiting for the client to notice. If the dropped frame was itself a taken
  // recovery, the recovery is due again from where it started.
  void on_frame_dropped(uint64_t frame_id) {
    const uint64_t from = in_flight_ ? std::min(frame_id, in_flight_from_) : frame_id;
    due_from_ = due_ ? std::min(due_from_, from) : from;
    due_ = true;
    ++dropped_;
  }
  uint64_t dropped() const { return dropped_; }
  uint64_t received() const { return received_; }
  uint64_t answered_already() const { return answered_already_; }

 private:
  bool answered(uint64_t lost) const {
    if (keyframe_sent_ && lost < last_keyframe_) return true;
    if (repair_sent_ && lost >= repair_from_ && lost < repair_at_) return true;
    // Taken, not yet sent: every frame the client can name was sent before it.
    return in_flight_ && lost >= in_flight_from_;
  }
  // Plain flags and values rather than std::optional: GCC 12 misreads optionals of integers here
  // (-Wmaybe-uninitialized).
  bool keyframe_sent_ = false, repair_sent_ = false;
  uint64_t last_keyframe_ = 0;                // frame id of the last keyframe sent
  uint64_t repair_from_ = 0, repair_at_ = 0;  // the last repair sent: losses in [from, at) are repaired
  bool due_ = false, in_flight_ = false;
  uint64_t due_from_ = 0, in_flight_from_ = 0;
  uint64_t received_ = 0, answered_already_ = 0, dropped_ = 0;
};

}  // namespace kairo
