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
