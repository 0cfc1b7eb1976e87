// The emulator's checks (emu_core_checks.hpp) on the portable swapcontext fiber switch, the one
// non-x86-64 machines get. CMake builds this program without isel_emu: the two switches must not
// meet in one executable (their inline functions share names).
#ifndef ISEL_EMU_UCONTEXT
#error "CMakeLists.txt builds this file with ISEL_EMU_UCONTEXT defined"
#endif
#include "tests/emu_core_checks.hpp"

ISEL_TEST_MAIN()
