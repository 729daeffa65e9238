#pragma once
// The browser's transport: the session's H.264 access units (from the same frame stage as the UDP path: no
// second encoder) go out as RTP through GStreamer's webrtcbin, with NACK/RTX and RED/ULPFEC; a data channel
// carries the client's poses, inputs and hands up (the same wire encoding as the UDP path's payloads) and
// each frame's metadata down, paired with the frame by its RTP timestamp. Signalling (SDP offer/answer, ICE
// candidates) arrives through the node's WebSocket (node/signalling_server.hpp), which authenticates the
// browser before it reaches this class. No GStreamer header here: it stays in webrtc_transport.cpp.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "streaming/session_transport.hpp"

namespace kairo {

// Where the transport sends signalling messages (JSON text) to the browser. Thread-safe.
class SignallingChannel {
 public:
  virtual ~SignallingChannel() = default;
  virtual void send(std::string json_text) = 0;
};

// An ICE server as the node is configured with it and as the browser's RTCPeerConnection takes it.
struct IceServer {
  std::string url;  // stun:host:port or turn:host:port[?transport=udp|tcp]
  std::string username{}, credential{};
};
// "stun:host:port" or "turn:user:password@host:port"; throws kairo::Error (invalid input) for anything else.
IceServer parse_ice_server(const std::string& text);

struct WebRtcSettings {
  std::vector<IceServer> ice_servers;
};

class WebRtcTransport : public SessionTransport {
 public:
  // Builds and starts the session's pipeline (appsrc -> h264parse -> rtph264pay -> webrtcbin, and the data
  // channel); throws kairo::Error when GStreamer or one of its elements is missing.
  static std::shared_ptr<WebRtcTransport> create(const TransportSetup& setup, const WebRtcSettings& settings);

  // An authenticated browser: its first pose (so the first frame, the keyframe whose parameters make the
  // offer, shows its view) and the channel the offer and candidates go to. False when a browser is
  // attached already (one per session).
  virtual bool attach(std::shared_ptr<SignallingChannel> channel, const wire::PoseMessage& first_pose) = 0;
  virtual void detach(const SignallingChannel* channel) = 0;
  // The browser's answer and ICE candidates; an error text for a refused one (garbage SDP, out of order).
  virtual std::optional<std::string> remote_answer(std::string_view sdp) = 0;
  virtual std::optional<std::string> remote_candidate(unsigned mline_index, std::string_view candidate) = 0;
  virtual bool connected() const = 0;
};

}  // namespace kairo
