/// A port or an inclusive range of ports, 1-65535.
public struct PortRange: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public let lower: UInt16
    public let upper: UInt16

    public init?(_ lower: Int, _ upper: Int) {
        guard (1...65535).contains(lower), (1...65535).contains(upper), lower <= upper else { return nil }
        self.lower = UInt16(lower)
        self.upper = UInt16(upper)
    }

    public init(port: UInt16) { lower = port; upper = port }

    public var isSingle: Bool { lower == upper }

    public func contains(_ port: UInt16) -> Bool { (lower...upper).contains(port) }

    /// "443" or "8000-8100", as nft and the policy file write them.
    public var description: String { isSingle ? "\(lower)" : "\(lower)-\(upper)" }

    public static func < (a: PortRange, b: PortRange) -> Bool {
        (a.lower, a.upper) < (b.lower, b.upper)
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case outOfRange(String)
        case inverted(String)
        case malformed(String)
        public var description: String {
            switch self {
            case .outOfRange(let s): return "port \(s) is out of range (allowed: 1-65535)"
            case .inverted(let s): return "port range \"\(s)\" is inverted (the first port must not exceed the second)"
            case .malformed(let s): return "\"\(s)\" is not a port (allowed: a number 1-65535 or a range \"8000-8100\")"
            }
        }
    }

    public static func parse(number: Int) -> Result<PortRange, ParseError> {
        guard let p = PortRange(number, number) else { return .failure(.outOfRange("\(number)")) }
        return .success(p)
    }

    /// "443" or "8000-8100".
    public static func parse(_ text: String) -> Result<PortRange, ParseError> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2, parts.allSatisfy({ !$0.isEmpty && $0.count <= 6 && $0.allSatisfy { $0.isASCII && $0.isNumber } }) else {
            return .failure(.malformed(text))
        }
        let lo = Int(parts[0])!, hi = Int(parts.last!)!
        for n in [lo, hi] where !(1...65535).contains(n) { return .failure(.outOfRange("\(n)")) }
        guard lo <= hi else { return .failure(.inverted(text)) }
        return .success(PortRange(lo, hi)!)
    }

    /// Sorted, with overlapping and adjacent ranges joined.
    public static func merge(_ ranges: [PortRange]) -> [PortRange] {
        var out: [PortRange] = []
        for r in ranges.sorted() {
            if let last = out.last, Int(r.lower) <= Int(last.upper) + 1 {
                out[out.count - 1] = PortRange(Int(last.lower), max(Int(last.upper), Int(r.upper)))!
            } else {
                out.append(r)
            }
        }
        return out
    }
}

/// The layer-4 protocols an allow entry can name.
public enum TransportProtocol: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case tcp, udp
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}
