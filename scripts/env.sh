# Sourced by the scripts: the Swift toolchain and the build folder.
export PATH="/opt/swift/usr/bin:$PATH"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
