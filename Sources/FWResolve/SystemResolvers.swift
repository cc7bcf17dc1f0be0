import FWPolicy
#if canImport(Glibc)
import Glibc
#endif

/// The machine's own resolvers, the default when a policy names no `dns.servers`.
public enum SystemResolvers {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// The `nameserver` lines of resolv.conf (IPv4/IPv6, port 53), in order, without
    /// duplicates. Scoped link-local entries (fe80::1%eth0) are skipped: a zone cannot be
    /// written into a firewall rule. Throws a readable error if the file cannot be read
    /// or names no usable server.
    public static func nameservers(resolvConf: String = "/etc/resolv.conf") throws -> [SocketEndpoint] {
        let text = try contents(of: resolvConf)
        var servers: [SocketEndpoint] = []
        var skipped: [String] = []
        for value in nameserverValues(text) {
            if value.contains("%") {
                skipped.append("\(value) (scoped link-local address; set dns.servers instead)")
            } else if let address = IPAddress(value) {
                let server = SocketEndpoint(address: address, port: 53)
                if !servers.contains(server) { servers.append(server) }
            } else {
                skipped.append("\(value) (not an IP address)")
            }
        }
        guard !servers.isEmpty else {
            let why = skipped.isEmpty ? "" : "; skipped: " + skipped.joined(separator: ", ")
            throw Error(description: "\(resolvConf): no usable nameserver line\(why)")
        }
        return servers
    }

    /// The first word after each `nameserver` keyword; `#` and `;` start comments, as in
    /// glibc.
    static func nameserverValues(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let content = line.prefix { $0 != "#" && $0 != ";" }
            let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { return nil }
            return String(words[1])
        }
    }

    private static func contents(of path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Error(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Error(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
