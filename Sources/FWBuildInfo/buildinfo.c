#include "fwbuildinfo.h"

/* scripts/package writes include/fwctl_commit.h (one #define) for the length of its build
   and touches this file, so only this file is recompiled for a new commit; any other build
   says "unknown". */
#if __has_include("fwctl_commit.h")
#include "fwctl_commit.h"
#endif

#ifndef FWCTL_GIT_COMMIT
#define FWCTL_GIT_COMMIT "unknown"
#endif

const char *fwctl_git_commit(void) { return FWCTL_GIT_COMMIT; }

/* Under scripts/sanitize (ASan), fwctl is often started by something that clears the
   environment (a sudo hook, `up` starting watch), so ASAN_OPTIONS cannot be relied on.
   Leak reports are off: the Swift runtime keeps metadata caches for the process's life,
   which LeakSanitizer counts as leaks and turns into a failing exit status. Memory errors
   are still fatal. Without ASan this symbol is never used. */
const char *__asan_default_options(void) { return "detect_leaks=0"; }
