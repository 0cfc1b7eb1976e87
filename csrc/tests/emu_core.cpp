// The emulator's checks (emu_core_checks.hpp) on the default fiber switch (assembly on x86-64).
#include "tests/emu_core_checks.hpp"

ISEL_TEST_MAIN()
