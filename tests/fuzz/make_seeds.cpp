// Writes the fuzzers' seed corpora (tests/fuzz/corpus/<target>/): valid inputs of every kind each target
// reads, so that fuzzing starts from the formats rather than from nothing. Run by hand after a format
// changes (scripts/run-tests.sh builds it next to the fuzzers); its output is committed.
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "scenes/project_scenes.hpp"
#include "streaming/frame_metadata.hpp"
#include "streaming/frame_packetizer.hpp"
#include "streaming/messages.hpp"
#include "streaming/room_messages.hpp"
#include "streaming/wire.hpp"

using namespace kairo;
namespace fs = std::filesystem;

static void put(const fs::path& file, const std::vector<uint8_t>& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

template <typename Message>
static std::vector<uint8_t> typed(wire::PacketType type, const Message& m) {
  std::vector<uint8_t> out(1 + 2048);
  out[0] = uint8_t(type);
  out.resize(1 + wire::write(m, std::span<uint8_t>(out).subspan(1)));
  return out;
}

int main(int argc, char** argv) {
  const fs::path root = argc > 1 ? argv[1] : "tests/fuzz/corpus";
  // Authenticated datagrams: [type][payload] of every application and feedback message.
  const fs::path auth = root / "authenticated_datagram";
  wire::PoseMessage pose{.pose_id = 7, .sample_time_ns = 1'000'000, .display_time_ns = 41'000'000};
  pose.position[1] = 1.6f;
  put(auth / "pose", typed(wire::PacketType::kPose, pose));
  wire::HandMessage hand{.time_ns = 5, .hand = wire::kRightHand, .tracked = true, .grip = 0.7f};
  put(auth / "hand", typed(wire::PacketType::kHand, hand));
  put(auth / "input",
      typed(wire::PacketType::kInput,
            wire::InputMessage{.time_ns = 9, .device = wire::kGaze, .control = 1, .value = 0.25f}));
  put(auth / "report", typed(wire::PacketType::kReport, wire::ReportMessage{.frames_delivered = 100,
                                                                            .fragments_received = 900,
                                                                            .fragments_expected = 1000}));
  put(auth / "keyframe_request",
      typed(wire::PacketType::kKeyframeRequest, wire::KeyframeRequestMessage{.lost_frame_id = 12}));
  wire::RoomStateMessage room{.version = 3,
                              .node_time_ns = 100,
                              .your_slot = 0,
                              .member_count = 2,
                              .object_count = 1,
                              .event_count = 0};
  room.members[0] = {.slot = 0, .hands = 0, .user = wire::make_user_name("alice"), .joined_ns = 1};
  room.members[1] = {.slot = 1, .hands = 2, .user = wire::make_user_name("bob"), .joined_ns = 2};
  room.objects[0] = {.id = 0, .holder_slot = wire::kNoSlot};
  put(auth / "room_state", typed(wire::PacketType::kRoomState, room));

  // Frame assembly: the fragments of two frames, in order and with one lost (rebuilt from parity), as
  // [u16 length][u8 ms step][payload] chunks.
  std::mt19937 random(7);
  for (int variant = 0; variant < 2; ++variant) {
    FramePacketizer packetizer;
    std::vector<uint8_t> out;
    for (uint64_t id = 0; id < 2; ++id) {
      std::vector<uint8_t> access_unit(3000 + 1500 * id);
      for (auto& b : access_unit) b = uint8_t(random());
      const int n = packetizer.packetize(FrameInfo{.frame_id = id, .pose_id = id, .keyframe = id == 0},
                                         access_unit, 0.5);
      for (int i = 0; i < n; ++i) {
        if (variant == 1 && i == 1) continue;  // lost: parity rebuilds it
        const auto fragment = packetizer.fragment(i, int64_t(id) * 33'000'000);
        out.push_back(uint8_t(fragment.size()));
        out.push_back(uint8_t(fragment.size() >> 8));
        out.push_back(i == 0 ? 33 : 0);
        out.insert(out.end(), fragment.begin(), fragment.end());
      }
    }
    put(root / "frame_assembler" / (variant ? "two_frames_one_fragment_lost" : "two_frames"), out);
  }

  // Trace lines.
  const fs::path trace = root / "trace_line";
  for (
      const std::string line :
      {R"({"t_ns": 0, "head": {"p": [0.0, 1.6, 0.0], "q": [-0.0706129, -0.0356207, -0.0016565, 0.9968662]}, "ipd": 0.063})",
       R"({"t_ns":111000061,"head":{"p":[0,1.6,0],"q":[0,0,0,1]}})"})
    put(trace / std::to_string(std::hash<std::string>()(line)),
        std::vector<uint8_t>(line.begin(), line.end()));
  // HTTP requests: [credential][METHOD PATH]\n[body] for every route (tests/fuzz/http_route_fuzzer.cpp).
  const fs::path http = root / "http_route";
  const std::vector<std::string> requests = {
      "-GET /healthz\n",
      "-GET /readyz\n",
      "-GET /metrics\n",
      "-GET /\n",
      "-GET /web/app.js\n",
      R"(-POST /v1/auth/login
{"username":"user","password":"user-password"})",
      R"(-POST /v1/auth/refresh
{"refresh_token":"00112233445566778899aabbccddeeff"})",
      R"(-POST /v1/auth/logout
{"refresh_token":"00112233445566778899aabbccddeeff"})",
      R"(aPOST /v1/users
{"username":"new-user","password":"a-long-password","role":"client"})",
      R"(oPOST /v1/node-tokens
{"node":"fuzz-node"})",
      "oDELETE /v1/node-tokens/1\n",
      R"(nPOST /v1/nodes/register
{"name":"second","address":"127.0.0.1:7000","device":"lavapipe","encoders":["x264:h264"],"scenes":["vr-room"],"max_sessions":4,"signalling_url":"ws://127.0.0.1:1/signal"})",
      R"(nPOST /v1/nodes/{node}/heartbeat
{"active_sessions":1,"load":0.5,"scenes":["vr-room"]})",
      "nGET /v1/nodes/{node}/sessions\n",
      R"(nPOST /v1/nodes/{node}/sessions/{session}
{"state":"running"})",
      R"(nPOST /v1/nodes/{node}/sessions/{session}
{"state":"failed","reason":"the encoder stopped"})",
      "oGET /v1/nodes\n",
      "oPOST /v1/nodes/{node}/drain\n",
      "oPOST /v1/nodes/{node}/undrain\n",
      "oGET /v1/capacity\n",
      R"(cPOST /v1/rooms
{"name":"lab","scene":"vr-room","members":["ops"],"open":false})",
      "cDELETE /v1/rooms/{room}\n",
      R"(cPOST /v1/sessions
{"scene":"vr-room","eye_width":256,"eye_height":256,"fps":72,"codec":"h264","room":"{room}","transport":"webrtc"})",
      "cGET /v1/sessions\n",
      "cGET /v1/sessions/{session}\n",
      "cDELETE /v1/sessions/{session}\n",
      R"(cPATCH /v1/sessions/{session}/quality
{"max_bitrate_bps":2000000,"max_fps":45,"foveation":false})",
      R"(xPATCH /v1/sessions/{session}/quality
{"max_bitrate_bps":-1})",
      // The scene catalogue: a GLB header whose length lies, a list, a delete, a node's fetch and cache.
      std::string("oPUT /v1/scenes/lobby?sha256=") + std::string(64, 'a') + "\nglTF\x02\0\0\0\xff\0\0\0",
      "cGET /v1/scenes?limit=2\n",
      "oDELETE /v1/scenes/lobby\n",
      "nGET /v1/scene-blobs/" + std::string(64, '0') + "\n",
      R"(nPUT /v1/nodes/{node}/scene-cache
{"sha256":["0000000000000000000000000000000000000000000000000000000000000000"]})",
  };
  for (const std::string& request : requests)
    put(http / std::to_string(std::hash<std::string>()(request)),
        std::vector<uint8_t>(request.begin(), request.end()));

  // Scene files: [extension: 0 .glb, 1 .gltf, 2 .obj][file] (tests/fuzz/scene_file_fuzzer.cpp).
  const fs::path scene = root / "scene_file";
  const fs::path glb = fs::temp_directory_path() / "kairo-seed-marker.glb";
  scenes::write_marker_scene(glb, {0.0f, 1.6f, -2.0f}, 0.3f);
  std::ifstream glb_in(glb, std::ios::binary);
  std::vector<uint8_t> glb_seed{0};
  glb_seed.insert(glb_seed.end(), std::istreambuf_iterator<char>(glb_in), {});
  put(scene / "marker_glb", glb_seed);
  fs::remove(glb);
  // Compressed and quantised glTF as gltfpack writes them (renderer/gltf_extensions.cpp).
  for (const char* name : {"meshopt", "quantised"}) {
    std::ifstream packed(
        fs::path(KAIRO_SOURCE_DIR) / "tests/data/gltfpack" / (std::string("BoxTextured.") + name + ".glb"),
        std::ios::binary);
    std::vector<uint8_t> seed{0};
    seed.insert(seed.end(), std::istreambuf_iterator<char>(packed), {});
    put(scene / (std::string(name) + "_glb"), seed);
    put(root / "gltf_extensions" / (std::string(name) + "_glb"), seed);
  }
  // One triangle as glTF with its buffer inline (3 positions, then 3 uint16 indices).
  const std::string gltf =
      std::string("\x01") +
      R"({"asset":{"version":"2.0"},"scenes":[{"nodes":[0]}],"scene":0,"nodes":[{"mesh":0}],)"
      R"("meshes":[{"primitives":[{"attributes":{"POSITION":0},"indices":1,"material":0}]}],)"
      R"("materials":[{"pbrMetallicRoughness":{"baseColorFactor":[1,0,0,1]}}],)"
      R"("buffers":[{"byteLength":42,"uri":"data:application/octet-stream;base64,)"
      R"(AAAAAAAAAAAAAAAAAACAPwAAAAAAAAAAAAAAAAAAgD8AAAAAAAABAAIA"}],)"
      R"("bufferViews":[{"buffer":0,"byteOffset":0,"byteLength":36},{"buffer":0,"byteOffset":36,"byteLength":6}],)"
      R"("accessors":[{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3","min":[0,0,0],"max":[1,1,0]},)"
      R"({"bufferView":1,"componentType":5123,"count":3,"type":"SCALAR"}]})";
  put(scene / "triangle_gltf", std::vector<uint8_t>(gltf.begin(), gltf.end()));
  const std::string obj = std::string("\x02") + "v 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 0 1\nf 1//1 2//1 3//1\n";
  put(scene / "triangle_obj", std::vector<uint8_t>(obj.begin(), obj.end()));
  return 0;
}
