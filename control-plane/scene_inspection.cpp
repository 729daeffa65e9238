#include "control-plane/scene_inspection.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "control-plane/api_error.hpp"
#include "core/error.hpp"
#include "core/file_bytes.hpp"

namespace kairo::control {

namespace {

// A private temporary directory, removed with everything in it.
struct ScratchDirectory {
  ScratchDirectory() {
    std::string pattern = (std::filesystem::temp_directory_path() / "kairo-scene-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw_runtime("cannot make a temporary directory for a scene upload");
    path = pattern;
  }
  ~ScratchDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::filesystem::path path;
};

// The child's side, between fork and exec: only async-signal-safe calls (the parent has other threads).
[[noreturn]] void exec_inspector(const char* binary, char* const argv[], int out_fd, int err_fd,
                                 const InspectionLimits& limits) {
  dup2(out_fd, STDOUT_FILENO);
  dup2(err_fd, STDERR_FILENO);
  const int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
  for (int fd = 3; fd < 1024; ++fd) close(fd);  // the parent's sockets and database connections
  const auto limit = [](int resource, rlim_t value) {
    const rlimit r{value, value};
    setrlimit(resource, &r);
  };
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  // (Sanitizer builds reserve terabytes of address space for their shadow memory: no cap there, tests only.)
  limit(RLIMIT_AS, rlim_t(limits.memory_bytes));
#endif
  limit(RLIMIT_CPU, rlim_t(limits.timeout_s) + 1);
  limit(RLIMIT_FSIZE, 1 << 20);  // its answer on stdout and its reason on stderr, nothing more
  limit(RLIMIT_NOFILE, 16);
  limit(RLIMIT_CORE, 0);
  limit(RLIMIT_NPROC, 64);  // assimp may start a few threads, nothing forks
  execv(binary, argv);
  _exit(127);
}

}  // namespace

SceneStats inspect_scene_in_sandbox(const std::string& glb, const InspectionLimits& limits) {
  if (limits.inspector.empty()) throw_runtime("no scene inspector configured");
  const ScratchDirectory scratch;
  const std::filesystem::path file = scratch.path / "scene.glb", out = scratch.path / "stdout",
                              err = scratch.path / "stderr";
  {
    std::ofstream f(file, std::ios::binary);
    f.write(glb.data(), std::streamsize(glb.size()));
    if (!f) throw_runtime("cannot write the upload to " + file.string());
  }
  const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out_fd < 0 || err_fd < 0) throw_runtime("cannot open the inspector's output files");
  std::string binary = limits.inspector, scene = "scene", inspect = "inspect", path = file.string();
  char* const argv[] = {binary.data(), scene.data(), inspect.data(), path.data(), nullptr};
  const pid_t child = fork();
  if (child == 0) exec_inspector(binary.c_str(), argv, out_fd, err_fd, limits);
  close(out_fd);
  close(err_fd);
  if (child < 0) throw_runtime("cannot start the scene inspector");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limits.timeout_s);
  int status = 0;
  bool timed_out = false;
  for (;;) {
    const pid_t done = waitpid(child, &status, WNOHANG);
    if (done == child) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (timed_out)
    throw ApiError(400, "invalid_scene",
                   "the scene did not load within " + std::to_string(int(limits.timeout_s)) + " s");
  if (WIFSIGNALED(status))
    throw ApiError(
        400, "invalid_scene",
        "the scene crashed or exhausted the loader (signal " + std::to_string(WTERMSIG(status)) + ")");
  const int code = WEXITSTATUS(status);
  if (code == 127) throw_runtime("cannot run the scene inspector " + limits.inspector);
  if (code != 0) {
    std::string reason = read_file_bytes(err).substr(0, 64 * 1024);
    // The command's own message ("kairo: <reason>"), without log lines before it.
    const size_t at = reason.rfind("kairo: ");
    reason = at == std::string::npos ? reason : reason.substr(at + 7);
    while (!reason.empty() && (reason.back() == '\n' || reason.back() == '\r')) reason.pop_back();
    // The loader names the scratch file; the uploader knows it as their upload.
    for (size_t p; (p = reason.find(file.string())) != std::string::npos;)
      reason.replace(p, file.string().size(), "the upload");
    throw ApiError(400, "invalid_scene", reason.empty() ? "the scene does not load" : reason.substr(0, 500));
  }
  try {
    const auto answer = nlohmann::json::parse(read_file_bytes(out));
    return SceneStats{.triangles = answer.at("triangles").get<uint64_t>(),
                      .texture_bytes = answer.at("texture_bytes").get<uint64_t>(),
                      .textures = answer.at("textures").get<int>(),
                      .draws = answer.at("draws").get<int>()};
  } catch (const nlohmann::json::exception& e) {
    throw_runtime(std::string("the scene inspector answered garbage: ") + e.what());
  }
}

}  // namespace kairo::control
