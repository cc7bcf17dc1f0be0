import Foundation
import XCTest

/// Runs a program and captures its output. Tests use real tools (nft, ip, dig, fwctl).
public struct ProcessResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

@discardableResult
public func run(_ executable: String, _ args: [String], input: String? = nil, env: [String: String]? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    if let env { p.environment = env }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inPipe = Pipe()
    p.standardInput = inPipe
    try p.run()
    if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
    try? inPipe.fileHandleForWriting.close()
    // Read both pipes before waiting, so a large output cannot block the child.
    final class Box: @unchecked Sendable { var data = Data() }
    let outBox = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { outBox.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    let outData = outBox.data
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
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
public final class NetworkNamespace {
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
