// A minimal test harness for the C++ test programs in csrc/tests/ (each .cpp there is one ctest
// executable, see CMakeLists.txt). Checks register themselves with ISEL_CHECK_CASE; the program's
// main is ISEL_TEST_MAIN(). A failing EXPECT stops its check with the file, line, condition and
// the values given; the program runs every check, prints PASS/FAIL with the time of each, and
// exits 1 if any failed. `prog NAME...` runs only the checks whose names contain a NAME.
//
// Adding a kernel family's emulated checks (e.g. affinity propagation) to CI and to both
// sanitizer builds is one new file: csrc/tests/<family>_emulated.cpp with ISEL_CHECK_CASEs and
// ISEL_TEST_MAIN(); CMake globs it and tools/sanitize.sh runs every ctest.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace isel::test {

#if defined(__SANITIZE_THREAD__)
#define ISEL_TEST_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ISEL_TEST_ASAN 1
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) && !defined(ISEL_TEST_TSAN)
#define ISEL_TEST_TSAN 1
#endif
#if __has_feature(address_sanitizer) && !defined(ISEL_TEST_ASAN)
#define ISEL_TEST_ASAN 1
#endif
#endif
#ifdef ISEL_TEST_TSAN
constexpr bool kThreadSanitizer = true;
#else
constexpr bool kThreadSanitizer = false;
#endif
#ifdef ISEL_TEST_ASAN
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
// Sanitized builds run 5-20x slower: checks use smaller sizes there.
constexpr bool kSanitized = kThreadSanitizer || kAddressSanitizer;

struct CheckFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Check {
  std::string name;
  std::function<void()> fn;
};

inline std::vector<Check>& registry() {
  static std::vector<Check> checks;
  return checks;
}

struct Register {
  Register(const char* name, void (*fn)()) { registry().push_back({name, fn}); }
};

template <class... Parts>
[[noreturn]] void fail(const char* file, int line, const char* cond, const Parts&... parts) {
  std::ostringstream out;
  out << file << ":" << line << ": expected " << cond;
  if constexpr (sizeof...(parts) > 0) {
    out << " --";
    ((out << " " << parts), ...);
  }
  throw CheckFailed(out.str());
}

inline int run_all(int argc, char** argv) {
  int failed = 0, ran = 0;
  for (const Check& c : registry()) {
    bool wanted = argc <= 1;
    for (int i = 1; i < argc; ++i)
      if (c.name.find(argv[i]) != std::string::npos) wanted = true;
    if (!wanted) continue;
    ++ran;
    auto t0 = std::chrono::steady_clock::now();
    std::string error;
    try {
      c.fn();
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown exception";
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (error.empty()) {
      std::printf("PASS %-40s %7.3f s\n", c.name.c_str(), s);
    } else {
      ++failed;
      std::printf("FAIL %-40s %7.3f s\n     %s\n", c.name.c_str(), s, error.c_str());
    }
    std::fflush(stdout);
  }
  if (ran == 0) {
    std::printf("no check matched the arguments\n");
    return 1;
  }
  std::printf("%d of %d checks failed\n", failed, ran);
  return failed ? 1 : 0;
}

// Runs fn and returns the message of the exception it throws; fails if it throws nothing.
template <class Fn>
std::string thrown_message(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  throw CheckFailed("expected an exception, none was thrown");
}

}  // namespace isel::test

#define ISEL_CHECK_CASE(name)                                                 \
  static void name();                                                        \
  static const ::isel::test::Register name##_registered_(#name, &name);      \
  static void name()

#define EXPECT(cond, ...)                                                               \
  do {                                                                                  \
    if (!(cond)) ::isel::test::fail(__FILE__, __LINE__, #cond, ##__VA_ARGS__);          \
  } while (0)

#define ISEL_TEST_MAIN() \
  int main(int argc, char** argv) { return ::isel::test::run_all(argc, argv); }
