#!/usr/bin/env bash
# Builds the C++ test programs (csrc/tests/*.cpp: the emulator's checks and every emulated
# kernel family's checks against its CPU path) under ThreadSanitizer into build/tsan and under
# AddressSanitizer (with LeakSanitizer) into build/asan, runs them with ctest, prints a summary
# and exits non-zero if a build failed, a test failed or a sanitizer reported anything.
#
# Usage: tools/sanitize.sh [thread] [address]      (both when no argument is given)
# Environment: JOBS (parallel jobs; default: the number of cores).
# Needs g++ (or clang++) with the sanitizer runtimes: on Debian/Ubuntu the packages libtsan2
# and libasan8 (pulled in by g++; install them alone with apt-get install -y libtsan2 libasan8).
set -uo pipefail
cd "$(dirname "$0")/.."

sanitizers=("$@")
[ ${#sanitizers[@]} -eq 0 ] && sanitizers=(thread address)
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cxx="${CXX:-c++}"

# Any report fails: TSan exits 66 at its first report, ASan aborts at its first error (and
# LeakSanitizer reports leaks at exit). CMake sets the same options on the tests it registers.
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_string_checks=1"

declare -A status times
overall=0
for san in "${sanitizers[@]}"; do
  case "$san" in
    thread) dir=build/tsan ;;
    address) dir=build/asan ;;
    *) echo "unknown sanitizer '$san' (expected thread or address)" >&2; exit 2 ;;
  esac
  start=$SECONDS
  # Fail early, and clearly, when the compiler lacks this sanitizer's runtime.
  probe=$(mktemp -d)
  echo 'int main() { return 0; }' > "$probe/p.cpp"
  if ! "$cxx" -fsanitize="$san" "$probe/p.cpp" -o "$probe/p" 2>"$probe/err"; then
    echo "error: $cxx cannot link with -fsanitize=$san:" >&2
    sed 's/^/    /' "$probe/err" >&2
    echo "       install the runtime (Debian/Ubuntu: apt-get install -y libtsan2 libasan8)" >&2
    status[$san]="no runtime"; overall=1; rm -rf "$probe"; continue
  fi
  rm -rf "$probe"

  echo "=== $san sanitizer: configure and build in $dir"
  mkdir -p build  # a clean checkout has no build folder, and the configure log goes beside $dir
  if ! cmake -S . -B "$dir" "${generator[@]}" -DITERSELECT_PYTHON=OFF -DITERSELECT_BUILD_CTESTS=ON \
       -DITERSELECT_ENABLE_CUDA=OFF -DITERSELECT_SANITIZER="$san" >"$dir.configure.log" 2>&1; then
    cat "$dir.configure.log"; status[$san]="configure failed"; overall=1; continue
  fi
  if ! cmake --build "$dir" -j "$jobs"; then
    status[$san]="build failed"; times[$san]=$((SECONDS - start)); overall=1; continue
  fi

  # TSan of GCC 12/13 cannot map its shadow memory when the kernel randomizes mmap with more
  # than 28 bits (Linux 6.x defaults to 32 on some distributions): run without ASLR there.
  run=()
  if [ "$san" = thread ] && [ -r /proc/sys/vm/mmap_rnd_bits ] && [ "$(cat /proc/sys/vm/mmap_rnd_bits)" -gt 28 ]; then
    if command -v setarch >/dev/null 2>&1; then
      run=(setarch "$(uname -m)" -R)
      echo "note: vm.mmap_rnd_bits > 28; running the TSan tests with ASLR off (setarch -R)"
    fi
  fi
  echo "=== $san sanitizer: run"
  if "${run[@]}" ctest --test-dir "$dir" --output-on-failure -j "$jobs"; then
    status[$san]=passed
  else
    status[$san]=FAILED; overall=1
  fi
  times[$san]=$((SECONDS - start))
done

echo
echo "=== sanitizer summary"
for san in "${sanitizers[@]}"; do
  printf '  %-8s %-18s %4s s\n' "$san" "${status[$san]:-not run}" "${times[$san]:--}"
done
exit $overall
