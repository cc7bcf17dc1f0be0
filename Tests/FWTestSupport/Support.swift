import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Runs a program and captures its output. Tests use real tools (nft, ip, dig, fwctl).
public struct ProcessResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `executable` with `args` and waits for it. Built on posix_spawn rather than
/// Foundation's Process: Process watches each child through an inherited socket and blocks
/// in waitpid when a daemon (dnsmasq) closes that socket on start-up, which stalls every
/// later Process in the test run.
@discardableResult
public func run(_ executable: String, _ args: [String], input: String? = nil) throws -> ProcessResult {
    var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
    for i in 0..<3 {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        // Close-on-exec, so no other child started meanwhile keeps these pipes open.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        switch i { case 0: inPipe = fds; case 1: outPipe = fds; default: errPipe = fds }
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

    let argv = ([executable] + args).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, nil, argv, environ)
    for fd in [inPipe[0], outPipe[1], errPipe[1]] { close(fd) }
    guard rc == 0 else {
        for fd in [inPipe[1], outPipe[0], errPipe[0]] { close(fd) }
        throw POSIXError(.init(rawValue: rc) ?? .EIO)
    }

    // Feed stdin and drain stdout on threads of their own (not GCD's pool, which callers
    // running many of these at once can exhaust), so no pipe can fill up and block.
    final class Box: @unchecked Sendable { var data = Data() }
    let outBox = Box()
    let done = DispatchGroup()
    let stdinWriter = FileHandle(fileDescriptor: inPipe[1], closeOnDealloc: true)
    let outReader = FileHandle(fileDescriptor: outPipe[0], closeOnDealloc: true)
    done.enter()
    Thread {
        if let input { try? stdinWriter.write(contentsOf: Data(input.utf8)) }
        try? stdinWriter.close()
        done.leave()
    }.start()
    done.enter()
    Thread {
        outBox.data = outReader.readDataToEndOfFile()
        done.leave()
    }.start()
    let errData = FileHandle(fileDescriptor: errPipe[0], closeOnDealloc: true).readDataToEndOfFile()
    done.wait()

    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return ProcessResult(status: exitCode,
                         stdout: String(decoding: outBox.data, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// Finds a tool on the usual paths, or skips the test with a clear reason.
public func tool(_ name: String) throws -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw XCTSkip("\(name) is not installed (scripts/setup installs it)")
}

public enum Paths {
    /// The package root, found from this source file.
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    /// The fwctl executable SwiftPM built next to the test bundle.
    public static var fwctl: String {
        let bundle = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }?.bundleURL
            ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return bundle.deletingLastPathComponent().appendingPathComponent("fwctl").path
    }

    public static func policies(_ name: String) -> String { packageRoot.appendingPathComponent("policies/\(name)").path }
}

/// A network namespace made for one test and always deleted afterwards: nothing a test
/// does ever reaches this machine's own network namespace.
public final class NetworkNamespace: @unchecked Sendable {
    public let name: String
    private let ip: String

    public init(prefix: String = "fwtest") throws {
        guard getuid() == 0 else { throw XCTSkip("network namespaces need root (CI runs as root)") }
        ip = try tool("ip")
        name = "\(prefix)-\(getpid())-\(UInt32.random(in: 0..<UInt32.max))"
        let r = try run(ip, ["netns", "add", name])
        guard r.status == 0 else { throw XCTSkip("cannot create a network namespace: \(r.stderr)") }
        _ = try? run(ip, ["-n", name, "link", "set", "lo", "up"])
    }

    /// Runs a command inside the namespace.
    @discardableResult
    public func exec(_ executable: String, _ args: [String], input: String? = nil) throws -> ProcessResult {
        try run(ip, ["netns", "exec", name, executable] + args, input: input)
    }

    public func delete() { _ = try? run(ip, ["netns", "del", name]) }
    deinit { delete() }
}

/// Golden files: compares `actual` with the committed file; on a mismatch writes
/// `NAME.actual` beside it for review (and never overwrites the golden file).
/// FWCTL_UPDATE_GOLDEN=1 writes the golden file instead, for a deliberate change.
public func assertGolden(_ actual: String, _ golden: URL, file: StaticString = #filePath, line: UInt = #line) {
    let actualURL = golden.appendingPathExtension("actual")
    if ProcessInfo.processInfo.environment["FWCTL_UPDATE_GOLDEN"] == "1" {
        try? FileManager.default.createDirectory(at: golden.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? actual.write(to: golden, atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(at: actualURL)
        return
    }
    guard let expected = try? String(contentsOf: golden, encoding: .utf8) else {
        try? actual.write(to: actualURL, atomically: true, encoding: .utf8)
        XCTFail("golden file \(golden.path) is missing; wrote \(actualURL.lastPathComponent) for review", file: file, line: line)
        return
    }
    if expected == actual {
        try? FileManager.default.removeItem(at: actualURL)
    } else {
        try? actual.write(to: actualURL, atomically: true, encoding: .utf8)
        XCTFail("\(golden.lastPathComponent) differs; see \(actualURL.path) (diff -u \(golden.path) \(actualURL.path))", file: file, line: line)
    }
}

/// A JSON-lines file (an access log, an upstream's request record), one dictionary per
/// line; a missing file or an unparsable line gives nothing.
public func jsonLines(_ file: String) -> [[String: Any]] {
    let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

/// The last `lines` lines of a file, for failure messages.
public func tail(_ file: String, lines: Int = 20) -> String {
    let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
    return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
}
