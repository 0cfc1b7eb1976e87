// Deliberately broken kernels, to prove the checks around the emulator catch what they claim:
//  - a missing __syncthreads (a shared-memory write, then another thread's read): in the
//    ThreadSanitizer build a child process running it must die with a TSan data-race report
//    naming the kernel, and the same kernel with the barrier must run clean; in other builds the
//    forward and reverse schedules must both expose the wrong values the race gives;
//  - a write one past a block-storage array, one past the dynamic block storage, and one past a
//    cudaMalloc buffer: in the AddressSanitizer build a child process must die with an ASan
//    report for each; in other builds the emulator's canaries must turn the first two into an
//    exception (the third is out of their reach).
// Run as `emu_faults --fault NAME` it runs one broken kernel and returns 0 (what the parent
// checks is that a sanitizer stopped it first).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/cuda_compat.cuh"
#include "tests/harness.hpp"

extern char** environ;

namespace {

using isel::emu::Schedule;

constexpr int kThreads = 128;

__global__ void racy_kernel(float* out) {
  ISEL_SHARED(float, s, kThreads);
  const int t = threadIdx.x;
  s[t] = 2.0f * static_cast<float>(t);
  // BUG (deliberate): no __syncthreads() here, so thread t may read s[t + 1] before thread t+1
  // has written it.
  out[t] = s[(t + 1) % kThreads];
}

__global__ void fixed_kernel(float* out) {
  ISEL_SHARED(float, s, kThreads);
  const int t = threadIdx.x;
  s[t] = 2.0f * static_cast<float>(t);
  __syncthreads();
  out[t] = s[(t + 1) % kThreads];
}

__global__ void shared_overflow_kernel(int n) {
  ISEL_SHARED(int, s, 10);
  if (threadIdx.x == 0) s[n] = 1;  // n == 10: one past the end
}

__global__ void dynamic_overflow_kernel(int n) {
  ISEL_SHARED_DYNAMIC(float, d);
  if (threadIdx.x == 0) d[n] = 1.0f;  // n == shmem / 4: one past the end
}

__global__ void global_overflow_kernel(float* p, int n) {
  if (threadIdx.x == 0) p[n] = 1.0f;  // n == the allocation's length
}

bool right(const std::vector<float>& out) {
  for (int t = 0; t < kThreads; ++t)
    if (out[t] != 2.0f * static_cast<float>((t + 1) % kThreads)) return false;
  return true;
}

std::vector<float> run_kernel(void (*kernel)(float*), Schedule s) {
  Schedule saved = isel::emu::schedule();
  isel::emu::set_schedule(s);
  std::vector<float> out(kThreads, -1.0f);
  isel::launch(kernel, dim3(1), dim3(kThreads), 0, nullptr, out.data());
  isel::emu::set_schedule(saved);
  return out;
}

int run_fault(const std::string& name) {
  if (name == "race") {
    run_kernel(racy_kernel, Schedule::forward);
  } else if (name == "fixed") {
    if (!right(run_kernel(fixed_kernel, Schedule::forward))) return 3;
  } else if (name == "shared-overflow") {
    isel::launch(shared_overflow_kernel, dim3(1), dim3(32), 0, nullptr, 10);
  } else if (name == "dynamic-overflow") {
    isel::launch(dynamic_overflow_kernel, dim3(1), dim3(32), 5 * sizeof(float), nullptr, 5);
  } else if (name == "global-overflow") {
    float* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, 7 * sizeof(float)));
    isel::launch(global_overflow_kernel, dim3(1), dim3(32), 0, nullptr, p, 7);
    CUDA_CHECK(cudaFree(p));
  } else {
    std::fprintf(stderr, "unknown fault '%s'\n", name.c_str());
    return 2;
  }
  return 0;
}

struct ChildResult {
  int exit_code = -1;  // -1: killed by a signal
  std::string output;  // stdout and stderr together
};

// Runs this program again as `self --fault NAME` with `options` as the sanitizer's options.
ChildResult run_child(const std::string& fault, const std::string& options_var, const std::string& options) {
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) throw std::runtime_error("cannot find this program's path in /proc/self/exe");
  self[len] = '\0';
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, options_var.c_str(), options_var.size()) != 0 || (*e)[options_var.size()] != '=')
      env_store.push_back(*e);
  env_store.push_back(options_var + "=" + options);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string a0 = self, a1 = "--fault", a2 = fault;
  char* argv[] = {a0.data(), a1.data(), a2.data(), nullptr};

  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  pid_t pid;
  int rc = posix_spawn(&pid, self, &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw std::runtime_error(std::string("posix_spawn failed: ") + std::strerror(rc));
  }
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) r.output.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

std::string head(const std::string& s) { return s.substr(0, 1500); }

}  // namespace

ISEL_CHECK_CASE(missing_syncthreads_is_caught) {
  if (isel::test::kThreadSanitizer) {
    const std::string opts = "halt_on_error=1 exitcode=66";
    ChildResult racy = run_child("race", "TSAN_OPTIONS", opts);
    EXPECT(racy.exit_code == 66 && contains(racy.output, "WARNING: ThreadSanitizer: data race") &&
               contains(racy.output, "racy_kernel"),
           "exit code", racy.exit_code, "output:\n", head(racy.output));
    ChildResult fixed = run_child("fixed", "TSAN_OPTIONS", opts);
    EXPECT(fixed.exit_code == 0 && !contains(fixed.output, "ThreadSanitizer"), "exit code", fixed.exit_code,
           "output:\n", head(fixed.output));
  } else {
    // Without TSan the race shows in the values: threads run in order between barriers, so
    // in either order some thread reads a neighbour's slot before it is written.
    for (Schedule s : {Schedule::forward, Schedule::reverse}) {
      EXPECT(!right(run_kernel(racy_kernel, s)), "the racy kernel gave the right values under schedule", int(s));
      EXPECT(right(run_kernel(fixed_kernel, s)), "the fixed kernel gave wrong values under schedule", int(s));
    }
  }
}

ISEL_CHECK_CASE(out_of_bounds_is_caught) {
  if (isel::test::kAddressSanitizer) {
    const std::string opts = "halt_on_error=1:detect_leaks=0";
    struct Want {
      const char* fault;
      const char* report;
    } wants[] = {{"shared-overflow", "AddressSanitizer: use-after-poison"},
                 {"dynamic-overflow", "AddressSanitizer: heap-buffer-overflow"},
                 {"global-overflow", "AddressSanitizer: heap-buffer-overflow"}};
    for (const Want& w : wants) {
      ChildResult r = run_child(w.fault, "ASAN_OPTIONS", opts);
      EXPECT(r.exit_code != 0 && contains(r.output, w.report) && contains(r.output, "overflow_kernel"), w.fault,
             "exit code", r.exit_code, "output:\n", head(r.output));
    }
    ChildResult fixed = run_child("fixed", "ASAN_OPTIONS", opts);
    EXPECT(fixed.exit_code == 0 && !contains(fixed.output, "AddressSanitizer"), "exit code", fixed.exit_code,
           "output:\n", head(fixed.output));
  } else {
    std::string m = isel::test::thrown_message([] { run_fault("shared-overflow"); });
    EXPECT(contains(m, "wrote past the end of block storage #0 (40 bytes), at byte 40"), m);
    m = isel::test::thrown_message([] { run_fault("dynamic-overflow"); });
    EXPECT(contains(m, "wrote past the end of its dynamic block storage (20 bytes), at byte 20"), m);
    std::printf("     (a write past a cudaMalloc buffer is caught only in the AddressSanitizer build)\n");
  }
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--fault") return run_fault(argv[2]);
  return isel::test::run_all(argc, argv);
}
