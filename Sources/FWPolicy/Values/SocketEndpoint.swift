/// An address and a port: "127.0.0.1:3128", "[::1]:3128". A DNS server may leave the
/// port out ("127.0.0.11" means port 53).
public struct SocketEndpoint: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public let address: IPAddress
    public let port: UInt16

    public init(address: IPAddress, port: UInt16) { self.address = address; self.port = port }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String, portRequired: Bool)
        case badPort(String)
        public var description: String {
            switch self {
            case .malformed(let s, let req):
                return req
                    ? "\"\(s)\" is not a valid listen address (allowed: \"ADDR:PORT\" such as \"127.0.0.1:3128\" or \"[::1]:3128\")"
                    : "\"\(s)\" is not a valid server address (allowed: \"ADDR\" or \"ADDR:PORT\" such as \"127.0.0.11\", \"[2001:db8::53]:5353\")"
            case .badPort(let s): return "\"\(s)\" has an invalid port (allowed: 1-65535)"
            }
        }
    }

    /// `defaultPort` nil means the port is required.
    public static func parse(_ text: String, defaultPort: UInt16?) -> Result<SocketEndpoint, ParseError> {
        var host = text
        var portText: String?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .failure(.malformed(text, portRequired: defaultPort == nil)) }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return .failure(.malformed(text, portRequired: defaultPort == nil)) }
                portText = String(rest.dropFirst())
            }
            guard host.contains(":") else { return .failure(.malformed(text, portRequired: defaultPort == nil)) }
        } else if text.filter({ $0 == ":" }).count == 1 {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            host = String(parts[0]); portText = String(parts[1])
        }
        guard let addr = IPAddress(host) else { return .failure(.malformed(text, portRequired: defaultPort == nil)) }
        let port: UInt16
        if let pt = portText {
            guard !pt.isEmpty, pt.count <= 5, pt.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let n = Int(pt), (1...65535).contains(n) else { return .failure(.badPort(text)) }
            port = UInt16(n)
        } else if let d = defaultPort {
            port = d
        } else {
            return .failure(.malformed(text, portRequired: true))
        }
        return .success(SocketEndpoint(address: addr, port: port))
    }

    public var description: String {
        address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    public static func < (a: Self, b: Self) -> Bool { (a.address, a.port) < (b.address, b.port) }
}
