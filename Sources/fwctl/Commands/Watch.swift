import ArgumentParser
import Dispatch
import FWNetlink
import FWPolicy
import FWRender
import FWRuleset
import FWWatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `fwctl watch POLICY`: keeps the names sets true to DNS as TTLs run out, and runs the DNS
/// filter when the policy turns it on. Long-running; SIGTERM stops it, SIGUSR1 logs a
/// summary, SIGHUP asks every name again now.
struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep the host sets true to DNS as TTLs run out; with dns.filter, answer only allowed names.",
        discussion: """
        Each name is asked again when its TTL (clamped to dns.min_ttl..max_ttl) runs out; new
        addresses are added with a timeout of two TTLs, current ones renewed, and an address that
        left the answer expires by its timeout, all in one transaction per round. When the DNS
        servers fail, the last good answer is kept until max_ttl has passed since it was
        confirmed. A new `fwctl apply` is noticed within seconds and followed.
        Signals: TERM/INT stop, USR1 logs a summary, HUP asks every name again.
        """)

    @Argument(help: "The policy file (TOML), as applied.") var policy: String
    @OptionGroup var kernel: KernelOptions
    @Flag(help: "Log JSON lines on stdout instead of text on stderr.") var json = false
    @Flag(help: "One round over every name, print the summary, and exit (no filter).") var once = false
    @Flag(name: .customLong("renew-by-replace"), help: ArgumentHelp("Renew timeouts by delete and re-add, as on kernels before 6.10.", visibility: .hidden))
    var renewByReplace = false

    func run() throws {
        try kernel.prepare("watch")
        let loaded = try Pipeline.load(policy)
        let log = Self.logger(json: json)
        let watched = try Self.watched(loaded)
        var options = Watcher.Options(policyPath: policy, load: { path in
            try Self.watched(try PolicyReader.load(path: path))
        }, log: log)
        options.forceReplace = renewByReplace
        let statePath = once ? nil : Self.statePath(table: watched.table)
        options.statePath = statePath
        if let statePath {
            try? FileManager.default.createDirectory(atPath: (statePath as NSString).deletingLastPathComponent,
                                                     withIntermediateDirectories: true)
        }
        let watcher: Watcher
        do { watcher = try Watcher(policy: watched, options: options) } catch {
            Output.error("fwctl watch: \(error)")
            throw Exit.usage.code
        }

        // The first round before anything else: `up` returns with fresh sets.
        let first = watcher.runOnce()
        if once {
            if json { Self.printJSON(first) } else { print(first.text) }
            let failed = first.names.contains { $0.health != .ok }
            throw failed ? Exit.unresolved.code : ExitCode.success
        }

        let filter = FilterSlot(watcher: watcher, log: log)
        try filter.start(watched)
        let fatal = StopFlag()
        filter.onFatal = { why in
            log(.warning("\(why); stopping"))
            fatal.set()
            watcher.stop()
        }
        watcher.onPolicyChange = { filter.follow($0) }
        watcher.setFilterStats { filter.summary }

        let signals = [SIGTERM, SIGINT, SIGUSR1, SIGHUP].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                switch sig {
                case SIGUSR1: log(.summary(watcher.summary()))
                case SIGHUP: watcher.refreshAll()
                default: watcher.stop()
                }
            }
            source.resume()
            return source
        }
        log(.notice("watching \(watched.names.count) name(s) in table inet \(watched.table)\(filter.listening.isEmpty ? "" : "; dns filter on \(filter.listening.joined(separator: ", "))")"))
        Proxy.signalReady()
        watcher.run()
        signals.forEach { $0.cancel() }
        filter.stop()
        if let statePath { unlink(statePath) }
        log(.notice("stopped"))
        if fatal.isSet { throw Exit.differences.code }
    }

    /// A policy as watch keeps it: compiled offline (the set names and their hosts), with
    /// the resolvers the policy names or resolv.conf's.
    static func watched(_ loaded: LoadedPolicy) throws -> WatchedPolicy {
        let input = try Pipeline.compileInput(loaded, offline: true)
        return WatchedPolicy(policy: loaded.policy, sha256: SHA256.hex(loaded.text.utf8), servers: input.dnsServers,
                             ruleset: Compiler.compile(input))
    }

    /// Where a running watch keeps its summary for `fwctl status`: one per network
    /// namespace and table, like the proxy's pid file.
    static func statePath(table: String) -> String {
        Up.runFile("watch", table: table, suffix: "json")
    }

    static func printJSON(_ s: WatchSummary) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if let data = try? encoder.encode(s) { print(String(decoding: data, as: UTF8.self)) }
    }

    /// Text lines on stderr, or JSON lines on stdout.
    static func logger(json: Bool) -> WatchLog {
        let lock = NSLock()
        return { event in
            lock.lock(); defer { lock.unlock() }
            if json {
                print(jsonLine(event), terminator: "")
                fflush(stdout)
            } else {
                Output.error(textLine(event))
            }
        }
    }

    static func textLine(_ event: WatchEvent) -> String {
        let time = UTCTimestamp.now()
        switch event {
        case .change(let c):
            var parts: [String] = []
            if !c.added.isEmpty { parts.append("+" + c.added.map(\.description).joined(separator: " +")) }
            if !c.removed.isEmpty { parts.append("-" + c.removed.map(\.description).joined(separator: " -")) }
            let what = parts.isEmpty ? "" : " " + parts.joined(separator: " ")
            let why = c.problem.map { " (\($0))" } ?? ""
            return "\(time) watch: \(c.name): \(c.health.rawValue)\(what) ttl \(c.ttl)s\(why)"
        case .notice(let text): return "\(time) watch: \(text)"
        case .warning(let text): return "\(time) watch: warning: \(text)"
        case .summary(let s): return "\(time) " + s.text
        }
    }

    /// One JSON object per line (compact), for scripts and log shippers.
    struct EventLine: Encodable {
        var time = UTCTimestamp.now()
        var event: String
        var name: String?
        var health: String?
        var added: [String]?
        var removed: [String]?
        var ttl: UInt32?
        var problem: String?
        var message: String?
        var summary: WatchSummary?
    }

    static func jsonLine(_ event: WatchEvent) -> String {
        let line: EventLine
        switch event {
        case .change(let c):
            line = EventLine(event: "change", name: c.name, health: c.health.rawValue, added: c.added.map(\.description),
                             removed: c.removed.map(\.description), ttl: c.ttl, problem: c.problem)
        case .notice(let text): line = EventLine(event: "notice", message: text)
        case .warning(let text): line = EventLine(event: "warning", message: text)
        case .summary(let s): line = EventLine(event: "summary", summary: s)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(line)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }
}

/// A flag set from any thread.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// The DNS filter of the policy in force: started, stopped or moved when a new policy
/// changes `dns.filter` or `dns.filter_port`.
final class FilterSlot: @unchecked Sendable {
    private let watcher: Watcher
    private let log: WatchLog
    private let lock = NSLock()
    private var filter: DNSFilter?
    private var port: UInt16?
    private(set) var listening: [String] = []

    init(watcher: Watcher, log: @escaping WatchLog) {
        self.watcher = watcher
        self.log = log
    }

    /// Set when the filter cannot follow a new policy: watch stops (and exits non-zero)
    /// rather than run without the filter the policy asks for.
    var onFatal: (@Sendable (String) -> Void)?

    func start(_ p: WatchedPolicy) throws {
        guard p.policy.dns.filter else { return }
        let (f, bound) = try Self.open(watcher: watcher, port: p.policy.dns.filterPort, log: log)
        lock.lock(); defer { lock.unlock() }
        filter = f
        port = p.policy.dns.filterPort
        listening = bound
    }

    static func open(watcher: Watcher, port: UInt16, log: @escaping WatchLog) throws -> (DNSFilter, [String]) {
        let f = DNSFilter(watcher: watcher, port: port)
        do {
            return (f, try f.start { log(.notice($0)) })
        } catch {
            f.stop()
            Output.error("fwctl watch: the DNS filter cannot listen on port \(port): \(error)")
            throw Exit.usage.code
        }
    }

    /// A new policy: the new filter is listening before the old one closes (the same port
    /// is shared through SO_REUSEPORT), so no query finds nobody there.
    func follow(_ p: WatchedPolicy) {
        let wanted = p.policy.dns.filter ? p.policy.dns.filterPort : nil
        lock.lock()
        let (old, oldPort) = (filter, port)
        lock.unlock()
        guard wanted != oldPort else { return }
        var next: (DNSFilter, [String])?
        if let wanted {
            do { next = try Self.open(watcher: watcher, port: wanted, log: log) } catch {
                onFatal?("the DNS filter cannot move to port \(wanted)")
                return
            }
        }
        lock.lock()
        filter = next?.0
        port = wanted
        listening = next?.1 ?? []
        lock.unlock()
        old?.stop()
        log(.notice(wanted.map { "dns filter now on port \($0)" } ?? "dns filter off"))
    }

    func stop() {
        lock.lock()
        let f = filter
        filter = nil
        port = nil
        listening = []
        lock.unlock()
        f?.stop()
    }

    var summary: WatchSummary.Filter? {
        lock.lock(); defer { lock.unlock() }
        guard let filter else { return nil }
        var s = filter.summary
        s.listening = listening
        return s
    }
}
