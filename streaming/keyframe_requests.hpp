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
    speculative_ = false;
    ++due_requests_;
    return fresh;
  }
  // The client NACKed `frame_id`: it may yet arrive (the retransmission is on its way), or not (that too can
  // be lost). A speculative recovery: the next frame stops predicting from it where the encoder can, never a
  // keyframe for it. Should the frame be lost for good, the frames from the repair on are intact already,
  // instead of the break lasting until the client gives the frame up (a frame interval and 30 ms after it
  // began to arrive) and its request comes back (half a round trip more). A request for the same loss later
  // finds it answered. True when it makes a recovery due.
  bool on_at_risk(uint64_t frame_id) {
    if (answered(frame_id) || (due_ && due_from_ <= frame_id)) return false;
    const bool fresh = !due_;
    due_from_ = due_ ? std::min(due_from_, frame_id) : frame_id;
    speculative_ = fresh || speculative_;
    due_ = true;
    ++at_risk_;
    return fresh;
  }
  // Once per due recovery: the first lost frame to recover from (the encoder invalidates from it, or makes
  // the next frame a keyframe). `speculative` (if given) says whether it is only a NACKed frame's
  // (on_at_risk): then the encoder repairs where it can and makes no keyframe where it cannot.
  std::optional<uint64_t> take(bool* speculative = nullptr) {
    if (!due_) return std::nullopt;
    due_ = false;
    due_requests_ = 0;
    in_flight_ = true;
    in_flight_from_ = due_from_;
    in_flight_speculative_ = speculative_;
    if (speculative) *speculative = speculative_;
    speculative_ = false;
    return due_from_;
  }
  // Every frame the transport starts sending. A taken recovery replaced before it went out (the newest frame
  // replaces an unsent one) answers nothing: later requests are honoured again. A recovery due but not yet
  // taken that this frame answers is no longer due: a client's request that crossed a speculative repair
  // while it was encoded would otherwise make a second repair of the same loss.
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
    if (due_ && answered(due_from_)) {
      due_ = false;
      speculative_ = false;
      ++answered_when_sent_;
      answered_already_ += due_requests_;  // the client's requests merged into it are answered too
      due_requests_ = 0;
    }
  }
  // The sender dropped a frame before it went out (replaced by a newer one, predicted from it): a recovery
  // from it is due without waiting for the client to notice. If the dropped frame was itself a taken
  // recovery, the recovery is due again from where it started.
  void on_frame_dropped(uint64_t frame_id) {
    const uint64_t from = in_flight_ ? std::min(frame_id, in_flight_from_) : frame_id;
    due_from_ = due_ ? std::min(due_from_, from) : from;
    due_ = true;
    speculative_ = false;  // the dropped frame is a loss for certain
    ++dropped_;
  }
  uint64_t dropped() const { return dropped_; }
  uint64_t at_risk() const { return at_risk_; }
  uint64_t received() const { return received_; }
  // Requests that made no recovery: answered by a frame sent before they came, or, while due, by one that
  // went out before the recovery was taken. Never more than received().
  uint64_t answered_already() const { return answered_already_; }
  // Recoveries that were due and found answered by a frame sent before they were taken.
  uint64_t answered_when_sent() const { return answered_when_sent_; }

 private:
  bool answered(uint64_t lost) const {
    if (keyframe_sent_ && lost < last_keyframe_) return true;
    if (repair_sent_ && lost >= repair_from_ && lost < repair_at_) return true;
    // Taken, not yet sent: every frame the client can name was sent before it. Unless it was speculative:
    // the encoder may not repair at all.
    return in_flight_ && !in_flight_speculative_ && lost >= in_flight_from_;
  }
  // Plain flags and values rather than std::optional: GCC 12 misreads optionals of integers here
  // (-Wmaybe-uninitialized).
  bool keyframe_sent_ = false, repair_sent_ = false;
  uint64_t last_keyframe_ = 0;                // frame id of the last keyframe sent
  uint64_t repair_from_ = 0, repair_at_ = 0;  // the last repair sent: losses in [from, at) are repaired
  bool due_ = false, in_flight_ = false;
  bool speculative_ = false, in_flight_speculative_ = false;  // only NACKed frames' (on_at_risk)
  uint64_t due_from_ = 0, in_flight_from_ = 0;
  uint64_t due_requests_ = 0;  // client requests merged into the due recovery (0 while none is due)
  uint64_t received_ = 0, answered_already_ = 0, answered_when_sent_ = 0, dropped_ = 0, at_risk_ = 0;
};

}  // namespace kairo
