// Replay driver for g++ builds: a fuzz target over its corpus, regressions and known crashes.
//
// usage: fuzz_replay_<target> [--corpus DIR] [--regressions DIR] [--known-crashes DIR] [FILE...]
//   --corpus DIR         checked-in seed inputs; must exist and hold at least one file
//   --regressions DIR    inputs that once broke the target; may be absent or empty
//   --known-crashes DIR  inputs that still crash product code whose fix has not landed: each is
//                        run in a child process and reported ("KNOWN CRASH"); one that no longer
//                        crashes fails the run, so that it moves to regressions/ with its fix
//   FILE...              single inputs, e.g. to reproduce one
// Corpus, regression and FILE inputs run in this process, so a sanitizer or a failed property
// stops it with the input's name printed just before.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

[[noreturn]] void usage_error(const std::string& why) {
  std::fprintf(stderr, "fuzz replay: %s\n", why.c_str());
  std::fprintf(stderr,
               "usage: %s [--corpus DIR] [--regressions DIR] [--known-crashes DIR] [FILE...]\n",
               program_invocation_short_name);
  std::exit(2);
}

// Regular files under `dir`, sorted so runs are reproducible; dot files (.gitkeep) are skipped.
std::vector<fs::path> inputs_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    if (entry.path().filename().string().starts_with(".")) continue;
    out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::uint8_t> read_input(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz replay: cannot read %s: %s\n", path.c_str(), std::strerror(errno));
    std::exit(2);
  }
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void run(const fs::path& path) {
  // Printed before running, so a crash's output ends with the input that caused it.
  std::fprintf(stderr, "fuzz replay: running %s\n", path.c_str());
  const auto bytes = read_input(path);
  // A heap block of exactly `size` bytes, as libFuzzer gives: ASan catches a read past its end.
  const auto exact = std::make_unique<std::uint8_t[]>(bytes.size());
  std::copy(bytes.begin(), bytes.end(), exact.get());
  LLVMFuzzerTestOneInput(exact.get(), bytes.size());
}

// What a crash report says went wrong: a failed property with its detail, or a sanitizer's
// summary line; else the report's last line.
std::string crash_reason(const std::string& report) {
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < report.size();) {
    const auto end = std::min(report.find('\n', at), report.size());
    if (end > at) lines.push_back(report.substr(at, end - at));
    at = end + 1;
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    // A failed property's detail is on the next line.
    if (lines[i].find("fuzz property failed") != std::string::npos)
      return lines[i] + (i + 1 < lines.size() ? " --" + lines[i + 1] : "");
    if (lines[i].starts_with("SUMMARY: ")) return lines[i];
  }
  return lines.empty() ? std::string("no output") : lines.back();
}

// Runs a known crash in a child process; true when it still crashes, with what it printed.
bool still_crashes(const fs::path& path, std::string& how) {
  std::fflush(nullptr);
  int pipe_ends[2];
  if (pipe(pipe_ends) != 0) {
    std::fprintf(stderr, "fuzz replay: pipe failed: %s\n", std::strerror(errno));
    std::exit(2);
  }
  const pid_t child = fork();
  if (child < 0) {
    std::fprintf(stderr, "fuzz replay: fork failed: %s\n", std::strerror(errno));
    std::exit(2);
  }
  if (child == 0) {
    close(pipe_ends[0]);
    if (dup2(pipe_ends[1], STDERR_FILENO) < 0) _exit(3);
    const auto bytes = read_input(path);
    const auto exact = std::make_unique<std::uint8_t[]>(bytes.size());
    std::copy(bytes.begin(), bytes.end(), exact.get());
    LLVMFuzzerTestOneInput(exact.get(), bytes.size());
    _exit(0);
  }
  close(pipe_ends[1]);
  std::string report;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(pipe_ends[0], buffer, sizeof buffer);
    if (n > 0) {
      report.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(pipe_ends[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      std::fprintf(stderr, "fuzz replay: waitpid failed: %s\n", std::strerror(errno));
      std::exit(2);
    }
  }
  if (WIFSIGNALED(status)) {
    how = std::string(strsignal(WTERMSIG(status))) + ": " + crash_reason(report);
    return true;
  }
  if (WEXITSTATUS(status) != 0) {
    how = "exit status " + std::to_string(WEXITSTATUS(status)) + ": " + crash_reason(report);
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<fs::path> corpus_dirs, regression_dirs, crash_dirs, files;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> fs::path {
      if (i + 1 >= argc) usage_error(std::string(arg) + " needs a directory");
      return argv[++i];
    };
    if (arg == "--corpus") {
      corpus_dirs.push_back(value());
    } else if (arg == "--regressions") {
      regression_dirs.push_back(value());
    } else if (arg == "--known-crashes") {
      crash_dirs.push_back(value());
    } else if (arg == "-h" || arg == "--help") {
      usage_error("replays fuzz inputs through this target");
    } else if (arg.starts_with("-")) {
      usage_error("unknown option " + std::string(arg));
    } else {
      files.emplace_back(arg);
    }
  }
  if (corpus_dirs.empty() && files.empty() && crash_dirs.empty()) usage_error("nothing to replay");

  std::size_t corpus = 0, regressions = 0;
  for (const auto& dir : corpus_dirs) {
    if (!fs::is_directory(dir)) usage_error("corpus directory " + dir.string() + " is missing");
    const auto inputs = inputs_in(dir);
    if (inputs.empty()) usage_error("corpus directory " + dir.string() + " holds no inputs");
    for (const auto& path : inputs) run(path);
    corpus += inputs.size();
  }
  for (const auto& dir : regression_dirs) {
    if (!fs::is_directory(dir)) continue;  // no crash found yet
    const auto inputs = inputs_in(dir);
    for (const auto& path : inputs) run(path);
    regressions += inputs.size();
  }
  for (const auto& path : files) run(path);

  std::vector<std::string> crashing, fixed;
  for (const auto& dir : crash_dirs) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& path : inputs_in(dir)) {
      std::string how;
      if (still_crashes(path, how))
        crashing.push_back(path.string() + " (" + how + ")");
      else
        fixed.push_back(path.string());
    }
  }
  if (!corpus_dirs.empty() || !regression_dirs.empty() || !files.empty())
    std::fprintf(stderr, "fuzz replay: %zu corpus, %zu regression and %zu other input(s) passed\n",
                 corpus, regressions, files.size());
  if (!crash_dirs.empty() && crashing.empty() && fixed.empty())
    std::fprintf(stderr, "fuzz replay: no known crashes\n");
  for (const auto& line : crashing)
    std::fprintf(stderr, "fuzz replay: KNOWN CRASH, not yet fixed: %s\n", line.c_str());
  // A fixed crash must become a regression input, or nothing would notice it coming back.
  for (const auto& line : fixed)
    std::fprintf(stderr,
                 "fuzz replay: known crash no longer crashes: %s -- move it to regressions/ with "
                 "its fix\n",
                 line.c_str());
  return fixed.empty() ? 0 : 1;
}
