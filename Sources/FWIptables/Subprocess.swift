import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One run of an external tool (iptables-restore, ipset, ...): input from a file, output
/// to files, so a large ruleset can never deadlock on a pipe. Not Foundation's Process,
/// whose reaping thread races with other children of a long-running process.
struct Subprocess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var ok: Bool { status == 0 }
        /// The tool's first line of complaint, for one-line errors.
        var firstError: String {
            let lines = (stderr + stdout).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            return lines.first { !$0.isEmpty } ?? "exit status \(status)"
        }
    }

    struct LaunchError: Error, CustomStringConvertible {
        let description: String
    }

    static func run(_ argv: [String], input: String = "") throws -> Result {
        let files = try (0..<3).map { _ in try TempFile() }
        defer { files.forEach { $0.remove() } }
        try files[0].write(input)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, files[0].path, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, files[1].path, O_WRONLY | O_TRUNC, 0)
        posix_spawn_file_actions_addopen(&actions, 2, files[2].path, O_WRONLY | O_TRUNC, 0)
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        // A fixed, small environment: the tools need nothing of the caller's.
        let environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"]
        let cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { cEnv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
        guard rc == 0 else { throw LaunchError(description: "cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, stdout: files[1].read(), stderr: files[2].read())
    }
}

/// A private file in /tmp (mode 0600, unlinked by `remove`).
private struct TempFile {
    let path: String

    init() throws {
        var template = Array("/tmp/fwctl-ipt.XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw Subprocess.LaunchError(description: "mkstemp: \(String(cString: strerror(errno)))") }
        close(fd)
        path = String(cString: template)
    }

    func write(_ text: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    func read() -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func remove() { unlink(path) }
}
