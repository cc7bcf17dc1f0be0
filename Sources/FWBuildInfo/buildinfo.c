#include "fwbuildinfo.h"

#ifndef FWCTL_GIT_COMMIT
#define FWCTL_GIT_COMMIT "unknown"
#endif

const char *fwctl_git_commit(void) { return FWCTL_GIT_COMMIT; }
