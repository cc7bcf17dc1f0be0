import ArgumentParser
import FWPolicy
import FWRender
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `fwctl env POLICY`: the environment of a sandboxed client. Never reads a secret: an
/// `env:NAME` inject contributes NAME set to its placeholder, nothing more.
struct Env: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the environment a sandboxed client needs: proxy, CA bundle, placeholders, endpoint URLs.",
        discussion: "Order (sh): HTTP_PROXY, HTTPS_PROXY, http_proxy, https_proxy, NO_PROXY, no_proxy, "
            + "NODE_USE_ENV_PROXY, NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, "
            + "GIT_SSL_CAINFO, then each env:NAME inject and each endpoint's env, in policy order; "
            + "json: one object, keys sorted. Writes the CA bundle (system CAs, then fwctl's) next to "
            + "proxy.ca_cert as NAME-bundle.pem (ca.pem -> ca-bundle.pem), mode 0644, unless it is already up to date.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case sh, json }

    @Argument(help: "The policy file (TOML).") var policy: String
    @Option(help: "Output format: sh (export lines) or json.") var format: Format = .sh

    /// Where the system's CA bundle may be; the first that exists is used.
    static let systemBundles = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"]
    static let noProxy = "localhost,127.0.0.1,::1"

    func run() throws {
        let loaded = try Pipeline.load(policy)
        guard let proxy = loaded.policy.proxy else {
            Output.error("\(policy): no [proxy] section; fwctl env describes the proxy's clients (set proxy.listen and proxy.ca_cert)")
            throw Exit.usage.code
        }
        let caCert = Self.absolute(proxy.caCert)
        guard FileManager.default.fileExists(atPath: caCert) else {
            Output.error("\(caCert): no CA certificate yet; run `fwctl ca init \(policy)` first")
            throw Exit.usage.code
        }
        let bundle = Self.bundlePath(caCert)
        let vars: [(String, String)]
        do { vars = try Self.variables(loaded.policy, proxy: proxy, caCert: caCert, bundle: bundle) } catch let e as Conflict {
            Output.error("\(policy): \(e.message)")
            throw Exit.usage.code
        }
        do { try Self.writeBundle(bundle, caCert: caCert) } catch let e as Conflict {
            Output.error(e.message)
            throw Exit.usage.code
        }
        switch format {
        case .sh:
            print(vars.map { "export \($0.0)=\(Self.shQuote($0.1))" }.joined(separator: "\n"))
        case .json:
            let fields = vars.sorted { $0.0 < $1.0 }.map { ($0.0, JSONValue.string($0.1)) }
            print(JSONValue.object(fields).render(), terminator: "")
        }
    }

    /// A one-line reason, for variables set twice or a bundle that cannot be written.
    struct Conflict: Error { let message: String }

    /// The variables in their documented order, each name once. A name given twice with
    /// different values (say two injects with `env:SAME`) is an error naming both sources.
    static func variables(_ policy: Policy, proxy: ProxySettings, caCert: String, bundle: String) throws -> [(String, String)] {
        var out: [(String, String)] = []
        var sources: [String: (value: String, source: String)] = [:]
        func add(_ name: String, _ value: String, _ source: String) throws {
            if let prior = sources[name] {
                guard prior.value == value else {
                    throw Conflict(message: "\(name) is set twice with different values, by \(prior.source) and by \(source)")
                }
                return
            }
            sources[name] = (value, source)
            out.append((name, value))
        }
        let proxyURL = url(proxy.listen)
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] { try add(name, proxyURL, "proxy.listen") }
        // Endpoints are spoken to directly (plain HTTP, no CA): never through the proxy, also
        // when they are not on loopback (a sidecar).
        var bypass = noProxy.split(separator: ",").map(String.init)
        for e in proxy.endpoints where !e.listen.address.isLoopback && e.listen.address.value != 0 {
            let host = e.listen.address.description
            if !bypass.contains(host) { bypass.append(host) }
        }
        for name in ["NO_PROXY", "no_proxy"] { try add(name, bypass.joined(separator: ","), "fwctl env") }
        try add("NODE_USE_ENV_PROXY", "1", "fwctl env")
        try add("NODE_EXTRA_CA_CERTS", caCert, "proxy.ca_cert")
        for name in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"] {
            try add(name, bundle, "the CA bundle")
        }
        for rule in policy.allows {
            for (j, inject) in rule.inject.enumerated() {
                guard case .env(let name) = inject.secret else { continue }
                try add(name, inject.placeholder, "allow[\(rule.index)].inject[\(j)]")
            }
        }
        for (i, endpoint) in proxy.endpoints.enumerated() {
            guard let name = endpoint.env else { continue }
            try add(name, url(endpoint.listen), "proxy.endpoint[\(i)].env")
        }
        return out
    }

    /// "http://ADDR:PORT", IPv6 in brackets. An unspecified listen address (0.0.0.0, ::)
    /// is reached by a local client on loopback.
    static func url(_ e: SocketEndpoint) -> String {
        var e = e
        if e.address.value == 0 {
            e = SocketEndpoint(address: IPAddress(family: e.address.family, value: e.address.family == .ipv4 ? 0x7f00_0001 : 1), port: e.port)
        }
        return "http://\(e)"
    }

    /// `/etc/fwctl/ca.pem` -> `/etc/fwctl/ca-bundle.pem`; a name not ending in .pem keeps
    /// it whole: `ca.crt` -> `ca.crt-bundle.pem`.
    static func bundlePath(_ caCert: String) -> String {
        let url = URL(fileURLWithPath: caCert)
        var base = url.lastPathComponent
        if base.hasSuffix(".pem") { base.removeLast(4) }
        return url.deletingLastPathComponent().appendingPathComponent("\(base)-bundle.pem").path
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: path).standardizedFileURL.path
    }

    static func shQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// The system CAs, then fwctl's certificate. Left alone when the file already holds
    /// exactly that with mode 0644 (so a user who cannot write the directory can still run
    /// `fwctl env` once root has); otherwise written to a temporary file and renamed.
    static func writeBundle(_ bundle: String, caCert: String) throws {
        guard let ca = FileManager.default.contents(atPath: caCert) else {
            throw Conflict(message: "\(caCert): cannot read the CA certificate")
        }
        var content = Data()
        if let system = systemBundles.first(where: { FileManager.default.fileExists(atPath: $0) }) {
            guard let s = FileManager.default.contents(atPath: system) else {
                throw Conflict(message: "\(system): cannot read the system CA bundle")
            }
            content = s
            if let last = content.last, last != UInt8(ascii: "\n") { content.append(UInt8(ascii: "\n")) }
        } else {
            Output.error("warning: no system CA bundle (\(systemBundles.joined(separator: ", "))); \(bundle) holds fwctl's CA only")
        }
        content.append(ca)

        var st = stat()
        if stat(bundle, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_mode & 0o7777 == 0o644,
           FileManager.default.contents(atPath: bundle) == content {
            return
        }
        let tmp = "\(bundle).tmp-\(getpid())"
        func failure(_ what: String) -> Conflict {
            Conflict(message: "\(bundle): cannot \(what) the CA bundle: \(String(cString: strerror(errno)))")
        }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("create") }
        var done = false
        defer { if !done { unlink(tmp) } }
        do {
            defer { close(fd) }
            guard fchmod(fd, 0o644) == 0 else { throw failure("set the mode of") }
            let bytes = [UInt8](content)
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw failure("write") }
                off += n
            }
            guard fsync(fd) == 0 else { throw failure("write") }
        }
        guard rename(tmp, bundle) == 0 else { throw failure("replace") }
        done = true
    }
}
