import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file operations the CA needs, on POSIX calls so modes and owners are exact
/// (no umask surprises) and every failure names its file.
enum CAFiles {
    typealias Owner = (uid: uid_t, gid: gid_t)

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func readFile(_ path: String, hint: String = "") throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(path, "cannot read", hint: hint) }
        defer { close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw failure(path, "cannot read") }
            if n == 0 { return out }
            out += buf[0..<n]
        }
    }

    /// Writes `bytes` to a new file beside `path` with exactly `mode` and `owner`, then
    /// renames it into place, so a reader never sees a half-written file and a key is
    /// never readable by others, not even for a moment.
    static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t, owner: Owner?) throws {
        let tmp = "\(path).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw failure(path, "cannot create") }
        var ok = false
        defer {
            if fd >= 0 { close(fd) }
            if !ok { unlink(tmp) }
        }
        guard fchmod(fd, mode) == 0 else { throw failure(path, "cannot set mode") }
        if let owner, fchown(fd, owner.uid, owner.gid) != 0 { throw failure(path, "cannot change owner") }
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw failure(path, "cannot write") }
            off += n
        }
        guard fsync(fd) == 0 else { throw failure(path, "cannot write") }
        guard rename(tmp, path) == 0 else { throw failure(path, "cannot write") }
        ok = true
    }

    /// `mkdir -p`: the missing parents get `parentMode`, the last one `mode` and `owner`.
    /// Directories that already exist are left as they are: they may be shared ones such
    /// as /etc, whose mode is not ours to change.
    static func makeDirectories(_ path: String, mode: mode_t, parentMode: mode_t = 0o755, owner: Owner? = nil) throws {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var current = ""
        let parts = absolute.split(separator: "/")
        for (i, part) in parts.enumerated() {
            current += "/" + part
            let last = i == parts.count - 1
            if mkdir(current, last ? mode : parentMode) == 0 {
                // mkdir's mode went through the umask; set it exactly.
                guard chmod(current, last ? mode : parentMode) == 0 else { throw failure(current, "cannot set mode") }
                if last, let owner, chown(current, owner.uid, owner.gid) != 0 { throw failure(current, "cannot change owner") }
            } else if errno != EEXIST {
                throw failure(current, "cannot create directory")
            } else {
                var st = stat()
                guard stat(current, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                    throw CAError(current, "exists and is not a directory")
                }
            }
        }
    }

    /// Sets mode and owner of an existing file or directory, through a descriptor opened
    /// without following a symlink: `ca_dir` belongs to the proxy user, and root must not be
    /// led (by a symlink put there) to hand some other file to that user.
    static func secure(_ path: String, mode: mode_t, owner: Owner?) throws {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ELOOP { throw CAError(path, "is a symlink; refusing to change its mode or owner") }
            throw failure(path, "cannot open")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, [S_IFREG, S_IFDIR].contains(st.st_mode & S_IFMT) else {
            throw CAError(path, "is not a regular file or directory")
        }
        guard fchmod(fd, mode) == 0 else { throw failure(path, "cannot set mode") }
        if let owner, fchown(fd, owner.uid, owner.gid) != 0 { throw failure(path, "cannot change owner") }
    }

    /// A CAError from errno: "cannot read: no such file".
    static func failure(_ path: String, _ what: String, hint: String = "") -> CAError {
        let code = errno
        let reason: String
        switch code {
        case ENOENT: reason = "no such file or directory"
        case EACCES, EPERM: reason = "permission denied"
        default: reason = String(cString: strerror(code)).lowercased()
        }
        return CAError(path, "\(what): \(reason)\(code == ENOENT ? hint : "")")
    }
}
