import Foundation
import Logging
import XCTest
import FWPolicy
import FWProxy
import FWTestSupport

/// What the end-to-end proxy tests share: a temp directory, a test CA with an upstream
/// certificate, a real threaded HTTPS upstream (Fixtures/upstream.py, which records the
/// request headers it receives), dnsmasq answering the upstream names with 127.0.0.1, and
/// fwctl's proxy running in this process. Loopback only; `stop()` removes everything.
final class ProxyTestbed {
    let dir: URL
    let dns: DNSServer
    let upstream: Daemon
    let upstreamPort: UInt16
    /// The upstream's plain-HTTP port (same handler), when asked for.
    let plainPort: UInt16?
    let proxyPort = LoopbackPort.unused()
    private(set) var proxy: ProxyServer?

    /// `names`: the upstream names dnsmasq answers; `certifiedNames`: the ones the upstream's
    /// certificate covers; `plainHTTP`: the upstream also serves plain HTTP on `plainPort`.
    init(names: [String], certifiedNames: [String], plainHTTP: Bool = false) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("fwctl-proxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        do {
            try TestCertificates.makeUpstream(in: dir, names: certifiedNames)
            dns = try DNSServer(hosts: names.map { .init($0, ipv4: $0.hasPrefix("rebind.") ? "169.254.169.254" : "127.0.0.1", ttl: 60) })
            upstreamPort = LoopbackPort.unused()
            plainPort = plainHTTP ? LoopbackPort.unused() : nil
            let script = Paths.packageRoot.appendingPathComponent("Tests/FWProxyTests/Fixtures/upstream.py").path
            upstream = try Daemon([try tool("python3"), script, "\(upstreamPort)", dir.appendingPathComponent("upstream.pem").path,
                                   dir.appendingPathComponent("upstream.key").path, dir.appendingPathComponent("requests.jsonl").path]
                                  + (plainPort.map { ["--plain-port", "\($0)"] } ?? []),
                                  log: dir.appendingPathComponent("upstream.log").path)
            try Self.waitForTCP(upstreamPort, upstream)
            if let plainPort { try Self.waitForTCP(plainPort, upstream) }
        } catch {
            try? FileManager.default.removeItem(at: dir)
            throw error
        }
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// What the upstream's /big answers: 4 MiB of the bytes 0...255 repeated.
    static let bigBody = Data((0..<(4 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0) })
    var accessLog: String { path("access.jsonl") }

    /// Starts the proxy with `[dns]` and `[proxy]` filled in for the testbed; `proxyKeys` and
    /// `allows` are TOML lines for the rest.
    @discardableResult
    func startProxy(proxyKeys: String = "", allows: String, secrets: SecretStore? = nil,
                    authority: CertificateAuthority? = nil) throws -> Policy {
        let policy = try PolicyReader.parse(text: """
            version = 1
            [dns]
            servers = ["\(dns.endpoint)"]
            timeout_ms = 500
            [proxy]
            listen = "127.0.0.1:\(proxyPort)"
            access_log = "\(accessLog)"
            \(proxyKeys)
            \(allows)
            """, file: "test.toml", baseDirectory: dir.path).policy
        let server = try ProxyServer(policy: policy, dnsServers: policy.dns.servers!, logger: Logger(label: "test"), threads: 2,
                                     secrets: secrets, authority: authority)
        try server.start()
        proxy = server
        return policy
    }

    /// The access log, one dictionary per line.
    func logLines() -> [[String: Any]] { jsonLines(accessLog) }

    /// What the upstream received, one dictionary (path, headers) per request.
    func upstreamRequests() -> [[String: Any]] { jsonLines(path("requests.jsonl")) }

    /// The newest access-log line with `status`, waiting briefly: a line is written when
    /// its request or tunnel ends, which can trail the client's exit.
    func lastLogLine(status: Int) -> [String: Any]? {
        for _ in 0..<40 {
            if let l = logLines().last(where: { $0["status"] as? Int == status }) { return l }
            usleep(50_000)
        }
        return nil
    }

    /// A CONNECT to `target` that the client closes right after the proxy's answer, having
    /// sent `then` (nothing, or the start of a ClientHello) into the tunnel. Returns the
    /// proxy's status line.
    func bareConnect(_ target: String, then bytes: [UInt8] = []) throws -> String {
        guard let fd = LoopbackPort.connect(proxyPort) else { throw DaemonError("the proxy does not accept on \(proxyPort)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n\r\n".utf8)
        guard write(fd, request, request.count) == request.count else { throw DaemonError("cannot write the CONNECT") }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while !answer.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { break }
            answer += chunk[0..<n]
        }
        if !bytes.isEmpty { _ = write(fd, bytes, bytes.count) }
        return String(decoding: answer, as: UTF8.self).components(separatedBy: "\r\n").first ?? ""
    }

    /// The first access-log line whose reason contains `text`, waiting briefly.
    func logLine(reasonContaining text: String) -> [String: Any]? {
        for _ in 0..<40 {
            if let l = logLines().first(where: { ($0["reason"] as? String ?? "").contains(text) }) { return l }
            usleep(50_000)
        }
        return nil
    }

    /// A header's value in curl's `-D` dump, name compared case-insensitively.
    static func header(_ name: String, in text: String) -> String? {
        for line in text.split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == name.lowercased() { return parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    func stop() {
        proxy?.stop()
        upstream.stop()
        dns.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    static func waitForTCP(_ port: UInt16, _ server: Daemon) throws {
        for _ in 0..<100 {
            if let fd = LoopbackPort.connect(port) { close(fd); return }
            usleep(50_000)
        }
        throw DaemonError("nothing listens on 127.0.0.1:\(port): \(server.output)")
    }
}
