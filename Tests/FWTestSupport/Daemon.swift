import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct DaemonError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A long-running child of a test (dnsmasq, the lab's listeners, an `nft -i`): started
/// with posix_spawn and always reaped. Not Foundation's Process: dnsmasq closes the
/// descriptors it inherits, which Process takes for the child's exit; its monitor thread
/// then blocks in waitpid on the live daemon and every later Process in the run stalls.
/// Its stdout and stderr go to a log file.
public final class Daemon {
    let argv: [String]
    private let pid: pid_t
    private let log: String
    private var stdin: Int32 = -1
    private var exited = false

    public init(_ argv: [String], log: String, keepStdinOpen: Bool = false) throws {
        self.argv = argv
        self.log = log
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var pipeFDs: [Int32] = [-1, -1]
        if keepStdinOpen {
            guard pipe(&pipeFDs) == 0 else { throw DaemonError("pipe: \(String(cString: strerror(errno)))") }
            // Close-on-exec, so no other child inherits the write end and keeps it open.
            for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            posix_spawn_file_actions_adddup2(&actions, pipeFDs[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, argv[0], &actions, nil, cArgs, environ)
        if keepStdinOpen { close(pipeFDs[0]) }
        guard status == 0 else {
            if keepStdinOpen { close(pipeFDs[1]) }
            throw DaemonError("\(argv[0]): \(String(cString: strerror(status)))")
        }
        pid = child
        stdin = pipeFDs[1]
    }

    deinit { stop() }

    public var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    public var isRunning: Bool {
        guard !exited else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { exited = true }
        return !exited
    }

    public func send(_ text: String) {
        _ = text.withCString { write(stdin, $0, strlen($0)) }
    }

    /// Closes stdin (an `nft -i` exits on end of input), then SIGTERM, up to 2 s to exit,
    /// then SIGKILL; always reaped. Safe to call twice.
    /// Sends `sig` (e.g. SIGTERM) without waiting.
    public func signal(_ sig: Int32) { if isRunning { kill(pid, sig) } }

    public func stop() {
        if stdin >= 0 { close(stdin); stdin = -1 }
        guard isRunning else { return }
        kill(pid, SIGTERM)
        for _ in 0..<200 where isRunning { usleep(10_000) }
        guard isRunning else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        exited = true
    }
}
