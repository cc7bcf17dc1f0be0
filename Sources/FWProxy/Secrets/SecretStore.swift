import Foundation
import FWPolicy
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the secrets could not be loaded: one line per inject that failed, each naming
/// `allow[i].inject[j]`, the header and the source, never a value.
public struct SecretError: Error, Sendable, Equatable, CustomStringConvertible {
    public var problems: [String]
    /// One line: the problems joined with "; ".
    public var description: String { problems.joined(separator: "; ") }
}

/// The one place secrets are read (`env:NAME` / `file:PATH`), at start and again on
/// `reload()` (SIGHUP). No other type keeps them: the `Injector` asks for a value per request,
/// and a `Scrubber` is made from `makeScrubber()`.
///
/// Values are trimmed of surrounding white space (a file usually ends with a newline). An
/// empty value, one with a control character (it would split a header line) or a file over
/// 64 KiB is an error. `description`, `debugDescription` and the mirror never show a value.
public final class SecretStore: @unchecked Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// One inject of the policy and where it sits.
    private struct Slot {
        var allowIndex: Int
        var injectIndex: Int
        var inject: Inject
        var path: String { "allow[\(allowIndex)].inject[\(injectIndex)]" }
    }

    private let slots: [Slot]
    private let environment: [String: String]
    private let readsProcessEnvironment: Bool
    private let lock = NSLock()
    /// Keyed by source ("env:NAME", "file:/path").
    private var values: [String: [UInt8]] = [:]
    private var generation = 0
    /// The scrubber of `generation`, built on first use.
    private var template: (generation: Int, scrubber: Scrubber)?

    static let maxFileBytes = 65_536

    /// Reads every inject's secret now. `environment` is read for `env:` sources at start;
    /// `reload()` reads the live process environment when the default was used.
    public convenience init(policy: Policy) throws {
        try self.init(policy: policy, environment: ProcessInfo.processInfo.environment, live: true)
    }

    public convenience init(policy: Policy, environment: [String: String]) throws {
        try self.init(policy: policy, environment: environment, live: false)
    }

    private init(policy: Policy, environment: [String: String], live: Bool) throws {
        var slots: [Slot] = []
        for rule in policy.allows {
            for (j, inj) in rule.inject.enumerated() {
                slots.append(Slot(allowIndex: rule.index, injectIndex: j, inject: inj))
            }
        }
        self.slots = slots
        self.environment = environment
        self.readsProcessEnvironment = live
        values = try load(environment: environment)
    }

    /// Reads every source again. All or nothing: on any failure the old values stay and
    /// the error names what failed.
    public func reload() throws {
        let env = readsProcessEnvironment ? ProcessInfo.processInfo.environment : environment
        let fresh = try load(environment: env)
        lock.lock()
        values = fresh
        generation += 1
        lock.unlock()
    }

    /// How many secret sources are loaded (distinct env names and files).
    public var count: Int { lock.lock(); defer { lock.unlock() }; return values.count }

    /// Bumped by each successful reload, so a holder of a `Scrubber` can tell it is stale.
    public var version: Int { lock.lock(); defer { lock.unlock() }; return generation }

    /// The secret for an inject, as bytes. For the Injector and the Scrubber only.
    package func value(for inject: Inject) -> [UInt8]? {
        lock.lock(); defer { lock.unlock() }
        return values[inject.secret.description]
    }

    /// (secret, placeholder) pairs for scrubbing, longest secret first, one per distinct
    /// secret (the first inject's placeholder when several injects share a source or a value).
    package var scrubPairs: [(secret: [UInt8], placeholder: [UInt8])] {
        lock.lock(); defer { lock.unlock() }
        var seen = Set<[UInt8]>()
        var pairs: [(secret: [UInt8], placeholder: [UInt8])] = []
        for slot in slots {
            guard let v = values[slot.inject.secret.description], seen.insert(v).inserted else { continue }
            pairs.append((secret: v, placeholder: Array(slot.inject.placeholder.utf8)))
        }
        return pairs.enumerated().sorted { a, b in
            a.element.secret.count != b.element.secret.count ? a.element.secret.count > b.element.secret.count : a.offset < b.offset
        }.map(\.element)
    }

    /// A streaming scrubber over the current secrets (one per response): a copy of one
    /// built per generation of the secrets, so a response costs no table building.
    public func makeScrubber() -> Scrubber {
        lock.lock()
        if let t = template, t.generation == generation { lock.unlock(); return t.scrubber }
        let seen = generation
        lock.unlock()
        // The pairs are read after `seen`: a reload in between makes them newer, never
        // older, and the template is kept only when no reload came in between.
        let built = Scrubber(pairs: scrubPairs)
        lock.lock()
        if generation == seen { template = (seen, built) }
        lock.unlock()
        return built
    }

    /// One-shot scrubbing, for header values.
    public func scrub(_ text: String) -> String { makeScrubber().scrubbed(text) }

    public var description: String { "SecretStore(\(slots.count) inject(s): \(sourcesText))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["injects": slots.count, "sources": sourcesText], displayStyle: .class) }

    private var sourcesText: String {
        var seen = Set<String>()
        return slots.map(\.inject.secret.description).filter { seen.insert($0).inserted }.joined(separator: ", ")
    }

    // MARK: Reading

    private func load(environment: [String: String]) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        var failed: [String: ReadFailure] = [:]
        var problems: [String] = []
        for slot in slots {
            let source = slot.inject.secret.description
            let head = "\(slot.path) (header \"\(slot.inject.header)\"): secret \(source)"
            if out[source] != nil { continue }
            if let why = failed[source] { problems.append("\(head) \(why)"); continue }
            switch readSecret(slot.inject.secret, environment: environment) {
            case .success(let v): out[source] = v
            case .failure(let why):
                failed[source] = why
                problems.append("\(head) \(why)")
            }
        }
        if !problems.isEmpty { throw SecretError(problems: problems) }
        return out
    }

    /// The value, or why not (a phrase that never holds the value).
    private func readSecret(_ secret: Inject.Secret, environment: [String: String]) -> Result<[UInt8], ReadFailure> {
        let raw: [UInt8]
        switch secret {
        case .env(let name):
            guard let v = environment[name] else { return .failure("is not set") }
            raw = Array(v.utf8)
        case .file(let path):
            switch Self.readFile(path) {
            case .success(let bytes): raw = bytes
            case .failure(let why): return .failure(why)
            }
        }
        let value = Self.trimmed(raw)
        if value.isEmpty { return .failure("is empty") }
        if value.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
            return .failure("holds a control character (a line break or NUL would split the header)")
        }
        return .success(value)
    }

    private static func readFile(_ path: String) -> Result<[UInt8], ReadFailure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadFailure("cannot be read: \(errnoText())")) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(ReadFailure("cannot be read: \(errnoText())")) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return .failure("cannot be read: not a regular file") }
        guard st.st_size <= maxFileBytes else { return .failure("cannot be read: larger than \(maxFileBytes) bytes") }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure("cannot be read: \(errnoText())"))
            }
            if n == 0 { break }
            bytes += buf[0..<n]
            if bytes.count > maxFileBytes { return .failure("cannot be read: larger than \(maxFileBytes) bytes") }
        }
        for i in buf.indices { buf[i] = 0 }
        return .success(bytes)
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    private static func trimmed(_ b: [UInt8]) -> [UInt8] {
        let ws: Set<UInt8> = [0x20, 0x09, 0x0a, 0x0d]
        guard let first = b.firstIndex(where: { !ws.contains($0) }),
              let last = b.lastIndex(where: { !ws.contains($0) }) else { return [] }
        return Array(b[first...last])
    }
}

/// A reason a secret could not be read; never holds the value.
struct ReadFailure: Error, ExpressibleByStringInterpolation, CustomStringConvertible {
    var text: String
    init(_ text: String) { self.text = text }
    init(stringLiteral value: String) { text = value }
    var description: String { text }
}

extension String.StringInterpolation {
    mutating func appendInterpolation(_ f: ReadFailure) { appendLiteral(f.text) }
}
