import Foundation
import FWPolicy
import Logging

/// One JSON line per request or tunnel. Never a secret value: only names, addresses,
/// counts and fwctl's own reasons go in.
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
    }

    private let handle: FileHandle?
    private let lock = NSLock()
    private let logger: Logger

    public init(path: String?, logger: Logger) throws {
        self.logger = logger
        guard let path else { handle = nil; return }
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path) {
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o640])
        }
        handle = try FileHandle(forWritingTo: url)
        handle?.seekToEndOfFile()
    }

    public func record(_ e: Entry) {
        var fields: [(String, Any?)] = [
            ("time", UTCTimestamp.now()), ("client", e.client), ("mode", e.mode), ("host", e.host), ("port", e.port),
            ("original_dst", e.original), ("method", e.method), ("path", e.path), ("status", e.status),
            ("bytes_up", e.bytesUp), ("bytes_down", e.bytesDown), ("duration_ms", e.durationMs), ("reason", e.reason),
        ]
        fields = fields.filter { $0.1 != nil }
        let line = "{" + fields.map { "\"\($0.0)\":\(Self.json($0.1!))" }.joined(separator: ",") + "}\n"
        lock.lock()
        handle?.write(Data(line.utf8))
        lock.unlock()
        let what = "\(e.mode) \(e.host):\(e.port) \(e.method ?? "") \(e.path ?? "") -> \(e.status)"
        if let r = e.reason { logger.notice("\(what): \(r)") } else { logger.info("\(what)") }
    }

    static func json(_ v: Any) -> String {
        if let i = v as? Int { return "\(i)" }
        let s = "\(v)"
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out += u.value < 0x20 ? String(format: "\\u%04x", u.value) : String(u)
            }
        }
        return out + "\""
    }
}
