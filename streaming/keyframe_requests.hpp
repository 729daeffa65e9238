#pragma once
// Which of a client's keyframe requests to honour. A request names a frame the client lost or could not
// decode; one keyframe repairs every loss before it. So a request for a frame older than the last keyframe
// sent is answered already (the later frames of the same loss burst, or a request that crossed that keyframe
// in flight), and requests while a keyframe is due merge into it: one loss costs one keyframe, at most one
// per round trip. Without this, each lost frame of a burst asked for its own keyframe, the large keyframes
// caused the next losses, and sessions sharing a link spiralled down together. Pure logic: no clock, no
// lock (the caller serialises).
#include <cstdint>
#include <optional>

namespace kairo {

class KeyframeRequests {
 public:
  // A client's request; true when it makes a keyframe due (false: answered already, or merged).
  bool on_request(uint64_t lost_frame_id) {
    ++received_;
    // Answered by a keyframe sent after that frame, or by the one being encoded now (taken, not yet sent:
    // every frame the client can name was sent before it).
    if ((last_keyframe_ && lost_frame_id < *last_keyframe_) || in_flight_) {
      ++answered_already_;
      return false;
    }
    const bool fresh = !due_;
    due_ = true;
    return fresh;
  }
  // True once per due keyframe: the encoder makes the next frame one.
  bool take() {
    if (!due_) return false;
    due_ = false;
    in_flight_ = true;
    return true;
  }
  // Every frame the transport starts sending. A taken keyframe replaced before it went out (the newest frame
  // replaces an unsent one) answers nothing: later requests are honoured again.
  void on_frame_sent(uint64_t frame_id, bool keyframe) {
    if (keyframe) last_keyframe_ = frame_id;
    in_flight_ = false;
  }
  uint64_t received() const { return received_; }
  uint64_t answered_already() const { return answered_already_; }

 private:
  std::optional<uint64_t> last_keyframe_;  // frame id of the last keyframe sent
  bool due_ = false, in_flight_ = false;
  uint64_t received_ = 0, answered_already_ = 0;
};

}  // namespace kairo
