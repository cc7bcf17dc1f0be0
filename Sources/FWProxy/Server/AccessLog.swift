import Dispatch
import Foundation
import FWPolicy
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// One JSON line per request or tunnel. Never a secret value: only names, addresses,
/// counts and fwctl's own reasons go in.
///
/// Lines are collected in memory and written every 100 ms (or at 64 KiB), so a busy proxy
/// makes one write per batch instead of one per request; a refusal is written at once, with
/// whatever is pending before it, and `flush()` writes the rest at shutdown. The human log
/// (swift-log) gets refusals as notices and everything else at debug level.
public final class AccessLog: @unchecked Sendable {
    public struct Entry {
        public var client: String
        public var mode: String          // splice, mitm, endpoint, http, transparent
        public var host: String
        public var port: Int
        public var method: String?
        public var path: String?
        public var status: Int
        public var bytesUp: Int
        public var bytesDown: Int
        public var durationMs: Int
        public var reason: String?
        /// Where a redirected client was really going (transparent mode).
        public var original: String? = nil

        /// fwctl refused (or could not serve) this: written at once, and a notice. A reason
        /// on a 200 only says how a connection ended.
        var isRefusal: Bool { reason != nil && status >= 400 }
    }

    static let flushInterval = DispatchTimeInterval.milliseconds(100)
    static let flushBytes = 64 * 1024

    private let fd: Int32
    private let lock = NSLock()
    private var pending: [UInt8] = []
    private let logger: Logger
    private var timer: DispatchSourceTimer?

    public init(path: String?, logger: Logger) throws {
        self.logger = logger
        guard let path else { fd = -1; return }
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let opened = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard opened >= 0 else {
            throw ProxyServerError("access log \(path): cannot open: \(String(cString: strerror(errno)))")
        }
        fd = opened
        pending.reserveCapacity(Self.flushBytes)
        let t = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        t.schedule(deadline: .now() + Self.flushInterval, repeating: Self.flushInterval)
        t.setEventHandler { [weak self] in self?.flush() }
        t.resume()
        timer = t
    }

    deinit {
        timer?.cancel()
        flush()
        if fd >= 0 { close(fd) }
    }

    public func record(_ e: Entry) {
        if fd >= 0 {
            let line = Self.line(e, time: UTCTimestamp.now())
            lock.lock()
            pending.append(contentsOf: line.utf8)
            let now = e.isRefusal || pending.count >= Self.flushBytes
            lock.unlock()
            if now { flush() }
        }
        if let r = e.reason, e.isRefusal {
            logger.notice("\(e.mode) \(e.host):\(e.port) \(e.method ?? "") \(e.path ?? "") -> \(e.status): \(r)")
        } else if let r = e.reason {
            // A connection that ended early (the client left, no request came): worth a line
            // in the access log, not a notice on the console.
            logger.info("\(e.mode) \(e.host):\(e.port) \(e.method ?? "") \(e.path ?? "") -> \(e.status): \(r)")
        } else if logger.logLevel <= .debug {
            logger.debug("\(e.mode) \(e.host):\(e.port) \(e.method ?? "") \(e.path ?? "") -> \(e.status)")
        }
    }

    /// Writes what is pending.
    public func flush() {
        guard fd >= 0 else { return }
        lock.lock()
        defer { lock.unlock() }
        guard !pending.isEmpty else { return }
        pending.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                offset += n
            }
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// The JSON line, fields in a fixed order, absent ones left out.
    static func line(_ e: Entry, time: String) -> String {
        var s = "{\"time\":\"\(time)\",\"client\":"
        s += json(e.client)
        s += ",\"mode\":" + json(e.mode) + ",\"host\":" + json(e.host) + ",\"port\":\(e.port)"
        if let o = e.original { s += ",\"original_dst\":" + json(o) }
        if let m = e.method { s += ",\"method\":" + json(m) }
        if let p = e.path { s += ",\"path\":" + json(p) }
        s += ",\"status\":\(e.status),\"bytes_up\":\(e.bytesUp),\"bytes_down\":\(e.bytesDown),\"duration_ms\":\(e.durationMs)"
        if let r = e.reason { s += ",\"reason\":" + json(r) }
        return s + "}\n"
    }

    static func json(_ v: String) -> String {
        guard v.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
            return "\"" + v + "\""
        }
        var out = "\""
        for u in v.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out += u.value < 0x20 ? String(format: "\\u%04x", u.value) : String(u)
            }
        }
        return out + "\""
    }
}
