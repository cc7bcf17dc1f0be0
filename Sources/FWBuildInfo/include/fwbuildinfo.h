#ifndef FWBUILDINFO_H
#define FWBUILDINFO_H

/// The git commit fwctl was built from: scripts/package sets it; any other build says
/// "unknown".
const char *fwctl_git_commit(void);

#endif
