// Multi-user rooms end to end: two users' clients in one room on one node (real PostgreSQL, control plane,
// lavapipe, x264, loopback). Each sees the other's avatar where the other's head is; one grabs the shared
// object and moves it, and the other sees it move in the very next frame rendered after the node applied
// the release; joins and leaves arrive as events; a user who reconnects finds the room as it was left.
// Checked on the decoded pixels, through the client's reconstruction, at the projections of the points.
#include <gtest/gtest.h>

#include <fstream>
#include <mutex>
#include <thread>

#include "client/frame_reconstruction.hpp"
#include "client/reference_client.hpp"
#include "control-plane/auth_service.hpp"
#include "control-plane/http_client.hpp"
#include "core/trace.hpp"
#include "renderer/dynamic_draw.hpp"
#include "tests/metrics_text.hpp"
#include "tests/node_e2e_fixture.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

const glm::vec3 kAliceHead(0.0f, 1.6f, 0.0f), kBobHead(1.8f, 1.6f, -0.6f);
const glm::vec3 kSpawn(0.0f, 1.1f, -1.2f);  // RoomOptions' default
// Clear of the scene's red reference cube, and apart from the spawn point, from both viewpoints.
const glm::vec3 kMoved(-0.3f, 1.35f, -1.6f);
const glm::vec3 kAboveObject(0.0f, 0.13f, 0.0f);  // the hand grips the object from above

std::string still_trace(const Pose& head) {
  const auto path = test::temp_dir() / "still.jsonl";
  std::ofstream out(path);
  for (int64_t t : {int64_t(0), int64_t(600'000'000'000)})
    out << format_trace_line(
               TraceSample{.t_ns = t, .head = head, .ipd = kDefaultIpdMetres, .fov = std::nullopt})
        << "\n";
  return path.string();
}

// Alice's right hand, in seconds since her first decoded frame (session start-up takes its time): over the
// object, grip at 1 s, carry it to kMoved from 1.1 s to 1.8 s, let go at 2 s, then rest well away from it.
HandPair alice_hands(double t) {
  HandSample right{.pose = Pose{.position = kSpawn + kAboveObject}, .grip = 0, .tracked = true};
  if (t >= 1.0 && t < 2.0) {
    const float k = float(std::clamp((t - 1.1) / 0.7, 0.0, 1.0));
    right.pose.position = glm::mix(kSpawn, kMoved, k) + kAboveObject;
    right.grip = 1;
  } else if (t >= 2.0) {
    right.pose.position = t < 2.2 ? kMoved + kAboveObject : glm::vec3(0.3f, 0.9f, -0.4f);
  }
  return HandPair{std::nullopt, right};
}

glm::vec3 srgb(glm::vec3 linear) {
  glm::vec3 out;
  for (int c = 0; c < 3; ++c) {
    const float v = std::clamp(linear[c], 0.0f, 1.0f);
    out[c] = 255.0f * (v <= 0.0031308f ? 12.92f * v : 1.055f * std::pow(v, 1.0f / 2.4f) - 0.055f);
  }
  return out;
}

// The mean colour of the 3x3 pixels around where `point` projects in the left eye.
glm::vec3 colour_at(const ImageRgba8& image, const FrameMetadata& m, const glm::vec3& point) {
  const glm::vec2 p = project_to_pixel(m.view[0], point, m.eye_width, m.eye_height);
  glm::vec3 sum(0.0f);
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx) {
      const int x = std::clamp(int(p.x) + dx, 0, m.eye_width - 1),
                y = std::clamp(int(p.y) + dy, 0, m.eye_height - 1);
      const uint8_t* px = &image.pixels[(size_t(y) * size_t(image.width) + size_t(x)) * 4];
      sum += glm::vec3(px[0], px[1], px[2]);
    }
  return sum / 9.0f;
}

bool shows(const glm::vec3& colour, BuiltinMaterial material) {
  const glm::vec3 expected = srgb(builtin_material_colour(material));
  for (int c = 0; c < 3; ++c)
    if (std::abs(colour[c] - expected[c]) > 60.0f) return false;
  return true;
}

struct Seen {
  FrameMetadata metadata;
  bool other_head = false, object_at_spawn = false, object_moved = false;
};

TEST_F(NodeEndToEnd, room_members_see_each_other_and_the_shared_object_one_of_them_moves) {
  control->auth.create_user("alice", "alice-password", control::Role::kClient);
  control->auth.create_user("bob", "bob-password", control::Role::kClient);
  // Rooms are owned (docs/security.md): alice makes "lab" and lists bob as a member.
  const auto made = control::http_request(control->server.port(), "POST", "/v1/auth/login",
                                          R"({"username":"alice","password":"alice-password"})");
  const std::string alice_token = nlohmann::json::parse(made.body)["access_token"];
  ASSERT_EQ(control::http_request(control->server.port(), "POST", "/v1/rooms",
                                  R"({"name":"lab","scene":"vr-room","members":["bob"]})", alice_token)
                .status,
            201);
  test::InProcessNode node(control->url(), "127.0.0.1:0", 3);
  const uint16_t metrics_port = node.agent.metrics_port();  // the kernel chose it

  auto member = [&](const std::string& user, const glm::vec3& head, const glm::vec3& target,
                    double duration) {
    ClientOptions o = client_options(duration);
    o.user = user;
    o.password = user + "-password";
    o.fps = 20;
    o.room = "lab";
    o.trace = still_trace(test::look_at(head, target));
    return o;
  };

  // Bob watches from the side; the slot (colour) of alice's avatar comes from the room state he gets.
  std::mutex mutex;
  std::vector<Seen> bob_saw;
  std::vector<wire::RoomStateMessage> bob_states;
  uint8_t alice_slot = wire::kNoSlot;
  ClientOptions bob = member("bob", kBobHead, glm::vec3(0.0f, 1.35f, -0.8f), 11);
  bob.on_room_state = [&](const wire::RoomStateMessage& s) {
    std::lock_guard lock(mutex);
    bob_states.push_back(s);
    for (size_t i = 0; i < s.member_count; ++i)
      if (wire::user_name_view(s.members[i].user) == "alice") alice_slot = s.members[i].slot;
  };
  bob.on_decoded = [&](const FrameMetadata& m, const DecodedPicture& picture, size_t) {
    const ImageRgba8 image = reconstruct_stereo(picture, m);
    std::lock_guard lock(mutex);
    bob_saw.push_back(
        Seen{.metadata = m,
             .other_head = alice_slot != wire::kNoSlot &&
                           shows(colour_at(image, m, kAliceHead), avatar_material(alice_slot)),
             .object_at_spawn = shows(colour_at(image, m, kSpawn), BuiltinMaterial::kSharedObject),
             .object_moved = shows(colour_at(image, m, kMoved), BuiltinMaterial::kSharedObject)});
  };
  if (const char* dir = std::getenv("KAIRO_ROOM_TEST_SAVE"))
    bob.save_dir = std::string(dir) + "/bob";  // to look
  ClientReport bob_report;
  std::thread bob_thread([&] { bob_report = run_client(bob, std::atomic<bool>(false)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  ClientOptions alice = member("alice", kAliceHead, glm::vec3(-0.1f, 1.2f, -1.2f), 5);
  std::atomic<bool> alice_streaming{false};
  double script_start = -1;             // the hands callback's own state (one thread)
  double members_gauge_with_both = -1;  // the node's kairo_room_members once alice streams beside bob
  alice.on_decoded = [&](const FrameMetadata&, const DecodedPicture&, size_t) {
    if (!alice_streaming.exchange(true))
      members_gauge_with_both =
          test::metric_sample(control::http_request(metrics_port, "GET", "/metrics").body,
                              "kairo_room_members")
              .value_or(-1.0);
  };
  alice.hands = [&](double t, const Pose&) {
    if (alice_streaming && script_start < 0) script_start = t;
    return alice_hands(script_start < 0 ? 0.0 : t - script_start);
  };
  const ClientReport alice_report = run_client(alice, std::atomic<bool>(false));

  // Alice comes back while bob is still there: the first state she gets has the object where she left it.
  std::optional<wire::RoomStateMessage> first_state;
  std::vector<std::pair<FrameMetadata, bool>> alice_again_saw;
  ClientOptions again = member("alice", kAliceHead, glm::vec3(-0.1f, 1.2f, -1.2f), 2);
  if (const char* dir = std::getenv("KAIRO_ROOM_TEST_SAVE"))
    again.save_dir = std::string(dir) + "/alice-again";
  again.on_room_state = [&](const wire::RoomStateMessage& s) {
    std::lock_guard lock(mutex);
    if (!first_state) first_state = s;
  };
  again.on_decoded = [&](const FrameMetadata& m, const DecodedPicture& picture, size_t) {
    const ImageRgba8 image = reconstruct_stereo(picture, m);
    std::lock_guard lock(mutex);
    alice_again_saw.emplace_back(m, shows(colour_at(image, m, kMoved), BuiltinMaterial::kSharedObject));
  };
  const ClientReport again_report = run_client(again, std::atomic<bool>(false));
  bob_thread.join();

  // Events, each once, in order: as bob saw them.
  std::vector<std::string> events;
  for (const wire::RoomEvent& e : bob_report.room_events)
    events.push_back(std::string(wire::user_name_view(e.user)) + " " + wire::room_event_name(e.kind));
  const std::vector<std::string> expected{"bob join",    "alice join", "alice grab", "alice release",
                                          "alice leave", "alice join", "alice leave"};
  EXPECT_EQ(events, expected);
  ASSERT_EQ(bob_report.room_events.size(), expected.size());
  const int64_t alice_joined = bob_report.room_events[1].time_ns, grabbed = bob_report.room_events[2].time_ns,
                released = bob_report.room_events[3].time_ns, alice_left = bob_report.room_events[4].time_ns;
  EXPECT_EQ(alice_report.room_events.front().seq, 1u);  // alice got the room's history from its start

  // Bob saw alice's head, and the object at its place, in the frames rendered while she was there before
  // the grab (from 0.5 s after she joined: her first poses take a moment).
  std::lock_guard lock(mutex);
  int head_frames = 0, head_seen = 0, before_grab = 0, at_spawn = 0, after_release = 0, moved = 0;
  for (const Seen& s : bob_saw) {
    const int64_t t = s.metadata.render_start_ns;
    if (t > alice_joined + 500'000'000 && t < alice_left) {
      ++head_frames;
      head_seen += s.other_head ? 1 : 0;
    }
    if (t > alice_joined && t < grabbed) {
      ++before_grab;
      at_spawn += (s.object_at_spawn && !s.object_moved) ? 1 : 0;
    }
    if (t > released) {
      // The node applied the release before this frame began: it must show the object where it was let go.
      ++after_release;
      moved += (s.object_moved && !s.object_at_spawn) ? 1 : 0;
    }
  }
  std::printf(
      "bob: %d/%d frames show alice's head; object at spawn in %d/%d before the grab, moved in %d/%d "
      "rendered after the release\n",
      head_seen, head_frames, at_spawn, before_grab, moved, after_release);
  EXPECT_GE(head_frames, 10);
  EXPECT_GE(head_seen, head_frames * 9 / 10);
  EXPECT_GE(before_grab, 5);
  EXPECT_GE(at_spawn, before_grab * 9 / 10);
  EXPECT_GE(after_release, 20);
  EXPECT_EQ(moved, after_release);  // every one of them: no frame behind

  // The room's state said the same: the object free, at the place it was let go.
  ASSERT_FALSE(bob_states.empty());
  const wire::RoomObject& last = bob_states.back().objects[0];
  EXPECT_EQ(last.holder_slot, wire::kNoSlot);
  EXPECT_NEAR(glm::distance(glm::vec3(last.position[0], last.position[1], last.position[2]), kMoved), 0.0f,
              0.01f);

  // The reconnected alice: current state from her first message, and her frames show it.
  ASSERT_TRUE(first_state);
  EXPECT_EQ(first_state->member_count, 2);
  EXPECT_NEAR(
      glm::distance(glm::vec3(first_state->objects[0].position[0], first_state->objects[0].position[1],
                              first_state->objects[0].position[2]),
                    kMoved),
      0.0f, 0.01f);
  ASSERT_GE(alice_again_saw.size(), 5u);
  for (const auto& [m, object_moved] : alice_again_saw) EXPECT_TRUE(object_moved) << "frame " << m.frame_id;
  EXPECT_GT(again_report.frames_decoded, 5u);

  // The node counts room events for Prometheus.
  const std::string metrics = control::http_request(metrics_port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("kairo_room_events_total{kind=\"grab\"} 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("kairo_room_events_total{kind=\"join\"} 3\n"), std::string::npos) << metrics;
  EXPECT_EQ(members_gauge_with_both, 2.0);
  double members_at_end = -1;
  for (int i = 0; i < 50 && members_at_end != 0.0; ++i) {  // bob's leave is the node's once his session ends
    members_at_end =
        test::metric_sample(control::http_request(metrics_port, "GET", "/metrics").body, "kairo_room_members")
            .value_or(-1.0);
    if (members_at_end != 0.0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(members_at_end, 0.0);
}

}  // namespace
}  // namespace kairo
