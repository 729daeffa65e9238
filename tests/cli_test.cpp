// The `kairo` command's contract for outside scripts: exit codes, messages on stderr, output files.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <array>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "core/image_io.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

struct CommandResult {
  int exit_code = -1;
  bool signalled = false;
  std::string out;
  std::string err;
};

CommandResult run(const std::string& args) {
  const auto dir = test::temp_dir();
  const std::string command = std::string(KAIRO_BINARY) + " " + args + " > " + (dir / "out").string() +
                              " 2> " + (dir / "err").string();
  const int status = std::system(command.c_str());
  CommandResult r;
  r.signalled = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) >= 128);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  r.out = slurp(dir / "out");
  r.err = slurp(dir / "err");
  return r;
}

void expect_refused(const std::string& args, const std::string& message_part) {
  const CommandResult r = run(args);
  EXPECT_FALSE(r.signalled) << args;
  EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 2) << args << " exited " << r.exit_code;
  EXPECT_NE(r.err.find(message_part), std::string::npos) << args << "\nstderr: " << r.err;
}

const std::string kScene = std::string("--scene ") + KAIRO_SCENE_DIR + "/vr-room.glb";

TEST(Cli, help_lists_every_subcommand) {
  const CommandResult r = run("--help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* sub : {"render", "trace", "gpus", "encoders", "encode", "netsim", "contact-sheet"})
    EXPECT_NE(r.out.find(sub), std::string::npos) << sub;
  EXPECT_EQ(run("render --help").exit_code, 0);
}

TEST(Cli, render_writes_one_side_by_side_png) {
  const auto out = test::temp_dir() / "frame.png";
  const CommandResult documented =
      run("render " + kScene + " --size 64x48 --pose 0,1.6,0,0,0,0,1 --out " + out.string());
  ASSERT_EQ(documented.exit_code, 0) << documented.err;
  const ImageRgba8 image = read_png(out);
  EXPECT_EQ(image.width, 128);
  EXPECT_EQ(image.height, 48);
}

TEST(Cli, render_a_trace_writes_numbered_pngs_and_a_json_summary) {
  const auto dir = test::temp_dir();
  ASSERT_EQ(run("trace --duration 0.1 --rate 30 --seed 4 --out " + (dir / "t.jsonl").string()).exit_code, 0);
  const CommandResult r = run("render " + kScene + " --size 32x32 --trace " + (dir / "t.jsonl").string() +
                              " --out " + (dir / "frames").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir / "frames" / "000000.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "frames" / "000003.png"));
  EXPECT_NE(r.out.find("\"frames\":4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"ms_per_frame\""), std::string::npos) << r.out;
}

TEST(Cli, a_machine_without_a_vulkan_driver_gets_one_clear_error_line) {
  const auto dir = test::temp_dir();
  const std::string command =
      "VK_ICD_FILENAMES=/nonexistent.json VK_DRIVER_FILES=/nonexistent.json " + std::string(KAIRO_BINARY) +
      " render --scene " + KAIRO_SCENE_DIR + "/vr-room.glb --size 32x32 --pose 0,1.6,0,0,0,0,1 --out " +
      (dir / "x.png").string() + " > " + (dir / "out").string() + " 2> " + (dir / "err").string();
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::ifstream in(dir / "err");
  std::string line, all;
  int lines = 0;
  while (std::getline(in, line)) {
    all += line + "\n";
    ++lines;
  }
  EXPECT_EQ(lines, 1) << all;
  EXPECT_NE(all.find("Vulkan"), std::string::npos) << all;
}

TEST(Cli, encoders_lists_every_backend_with_availability_and_reason) {
  const CommandResult r = run("encoders --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* name : {"\"backend\":\"nvenc\"", "\"backend\":\"vaapi\"", "\"backend\":\"x264\"",
                           "\"backend\":\"x265\"", "\"available\":true", "\"reason\""})
    EXPECT_NE(r.out.find(name), std::string::npos) << name << " in " << r.out;
  EXPECT_EQ(r.out.find("Svt["), std::string::npos) << "library chatter on stdout";
}

TEST(Cli, encode_writes_an_elementary_stream_and_a_json_summary) {
  const auto dir = test::temp_dir();
  {
    std::ofstream y4m(dir / "in.y4m", std::ios::binary);
    y4m << "YUV4MPEG2 W64 H32 F30:1 Ip A1:1 C420jpeg\n";
    for (int f = 0; f < 12; ++f) {
      y4m << "FRAME\n";
      for (int i = 0; i < 64 * 32; ++i) y4m.put(char(16 + (i * 3 + f * 5) % 200));
      for (int i = 0; i < 2 * 32 * 16; ++i) y4m.put(char(128));
    }
  }
  const CommandResult r =
      run("encode --in " + (dir / "in.y4m").string() + " --codec h264 --encoder auto --bitrate 500k --out " +
          (dir / "out.h264").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* field :
       {"\"frames\":12", "\"bytes\"", "\"ms_per_frame_p50\"", "\"ms_per_frame_p99\"", "\"backend\":\"x264\""})
    EXPECT_NE(r.out.find(field), std::string::npos) << field << " in " << r.out;
  EXPECT_GT(std::filesystem::file_size(dir / "out.h264"), 100u);
  const CommandResult hevc =
      run("encode --in " + (dir / "in.y4m").string() + " --codec hevc --encoder x265 --bitrate 1M --out " +
          (dir / "out.hevc").string());
  EXPECT_EQ(hevc.exit_code, 0) << hevc.err;
  if (!std::filesystem::exists("/dev/nvidia0"))
    expect_refused("encode --in " + (dir / "in.y4m").string() +
                       " --codec h264 --encoder nvenc --bitrate 5M --out " + (dir / "x.h264").string(),
                   "nvenc (h264_nvenc) unavailable");
  expect_refused(
      "encode --in " + (dir / "in.y4m").string() + " --codec h264 --encoder x264 --bitrate fast --out /tmp/x",
      "--bitrate");
  expect_refused("encode --in /nonexistent.y4m --codec h264 --out /tmp/x", "cannot open");
  expect_refused("encode --in " + (dir / "in.y4m").string() + " --codec vp8 --out /tmp/x", "unknown codec");
}

TEST(Cli, netsim_relays_and_prints_its_counters_as_json_on_sigterm) {
  const auto dir = test::temp_dir();
  const std::string out = (dir / "netsim.json").string(), err = (dir / "netsim.err").string();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    freopen(out.c_str(), "w", stdout);
    freopen(err.c_str(), "w", stderr);
    // Port 0: the kernel picks a free one, and netsim says which once it is listening (no fixed ports, no
    // sleep that a loaded machine outlasts).
    execl(KAIRO_BINARY, KAIRO_BINARY, "netsim", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9",
          "--loss", "50", "--seed", "4", static_cast<char*>(nullptr));
    _exit(127);
  }
  int port = 0;
  for (int i = 0; i < 300 && port == 0; ++i) {  // up to 30 s on a loaded machine
    std::ifstream log(err);
    const std::string text((std::istreambuf_iterator<char>(log)), {});
    const size_t at = text.find("(port ");
    if (at != std::string::npos) port = std::atoi(text.c_str() + at + 6);
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GT(port, 0) << "netsim never said it was listening";
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(uint16_t(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 100; ++i) sendto(fd, "hello", 5, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  close(fd);
  // No sleep: on loopback the datagrams are in netsim's socket when sendto returns, and netsim counts what
  // its socket holds before it stops.
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::ifstream in(out);
  const std::string json((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(json.find("\"upstream\":{"), std::string::npos) << json;
  EXPECT_NE(json.find("\"received\":100"), std::string::npos) << json;
  EXPECT_NE(json.find("\"lost\":"), std::string::npos) << json;
  expect_refused("netsim --listen 127.0.0.1 --forward 127.0.0.1:1", "HOST:PORT");
  expect_refused("netsim --listen 127.0.0.1:0 --forward nowhere.example:1", "numeric IP");
}

TEST(Cli, bad_input_gets_a_clear_message_and_an_error_code_never_a_signal) {
  const auto dir = test::temp_dir();
  const std::string out = " --out " + (dir / "x.png").string();
  expect_refused("render --scene /nonexistent/room.glb --size 64x64 --pose 0,1.6,0,0,0,0,1" + out,
                 "no such scene file");
  std::ofstream(dir / "corrupt.glb") << "glTF this is not a real binary glTF file";
  expect_refused(
      "render --scene " + (dir / "corrupt.glb").string() + " --size 64x64 --pose 0,1.6,0,0,0,0,1" + out,
      "corrupt.glb");
  expect_refused("render " + kScene + " --size 64x64 --pose 0,1.6,0,nan,0,0,1" + out, "not finite");
  expect_refused("render " + kScene + " --size 64x64 --pose 0,1.6,0,0,0,0,0" + out, "zero length");
  expect_refused("render " + kScene + " --size 0x64 --pose 0,1.6,0,0,0,0,1" + out, "--size");
  expect_refused("render " + kScene + " --size 64 --pose 0,1.6,0,0,0,0,1" + out, "WIDTHxHEIGHT");
  expect_refused("render " + kScene + " --size 64x64 --pose 1,2,3" + out, "7 comma-separated");
  expect_refused("render " + kScene + " --size 64x64" + out, "--pose or --trace");
  expect_refused("render " + kScene + " --size 64x64 --pose 0,1.6,0,0,0,0,1 --gpu 99" + out, "--gpu 99");
  std::ofstream(dir / "bad.jsonl") << R"({"t_ns":0,"head":{"p":[0,1.6,0],"q":[0,0,0,1]}})"
                                   << "\n{oops\n";
  expect_refused(
      "render " + kScene + " --size 64x64 --trace " + (dir / "bad.jsonl").string() + " --out " + dir.string(),
      "bad.jsonl:2: not valid JSON");
  expect_refused("frobnicate", "subcommand");
}

}  // namespace
}  // namespace kairo
