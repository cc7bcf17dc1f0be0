import FWPolicy

/// What a rule tests. Each case is one nft match, so each has one home in every renderer
/// and in the netlink encoder.
public enum Match: Sendable, Equatable {
    /// `iifname "lo"` / `oifname "lo"`: by name, so no ifindex lookup is needed.
    case interfaceName(Direction, String)
    /// `ct state established,related`
    case ctState([CtState])
    /// `meta l4proto tcp`
    case l4proto(TransportProtocol)
    /// `ip daddr 192.0.2.1`, `ip6 saddr @set`, ...
    case address(Direction, AddressFamily, AddressMatch)
    /// `tcp dport 443`, `udp dport { 53, 5353 }`, `tcp dport @set`
    case port(TransportProtocol, Direction, PortMatch)
    /// `icmp type { ... }`
    case icmpType([ICMPType])
    /// `icmpv6 type { ... }`
    case icmpv6Type([ICMPv6Type])
    /// `meta skuid 999`: the local user that owns the sending socket (output hooks only).
    case socketUser(SocketUser)
    /// `meta mark 0x46574453`: the packet's mark equals this value, all 32 bits (set by
    /// the sending socket's SO_MARK on output).
    case mark(UInt32)
    /// `socket mark 0x46574453`: the local socket a packet is delivered to carries this
    /// mark (input hooks only; no match when no socket takes the packet).
    case socketMark(UInt32)
    /// Read back from the kernel but not something fwctl emits: kept as text (the kernel
    /// expressions, e.g. "[ meta load cpu => reg 1 ]"), so a diff shows it instead of
    /// hiding it.
    case opaque(String)

    /// For addresses: source or destination; for interfaces: in or out.
    public enum Direction: String, Sendable, Equatable { case source, destination }
}

/// A local user as a rule names it. The kernel knows only uids; a name the compiling host
/// cannot resolve stays a name, which renders (`meta skuid "fwproxy"`, resolved by nft when
/// loaded) but cannot be sent over netlink: kernel commands resolve it first.
public enum SocketUser: Sendable, Equatable, CustomStringConvertible {
    case uid(UInt32)
    case name(String)

    public var description: String {
        switch self {
        case .uid(let u): return "\(u)"
        case .name(let n): return "\"\(n)\""
        }
    }
}

public enum AddressMatch: Sendable, Equatable {
    case prefix(CIDR)
    case set(String)
}

public enum PortMatch: Sendable, Equatable {
    /// One port or range, or several (an anonymous set), merged and sorted.
    case ranges([PortRange])
}

public enum CtState: String, Sendable, Equatable, Comparable, CaseIterable {
    // nft prints them in its own bit order: invalid, established, related, new, untracked.
    case invalid, established, related, new, untracked
    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// ICMP types with nft's names and their numbers.
public enum ICMPType: String, Sendable, Equatable, Comparable, CaseIterable {
    case echoReply = "echo-reply"
    case destinationUnreachable = "destination-unreachable"
    case echoRequest = "echo-request"
    case timeExceeded = "time-exceeded"
    case parameterProblem = "parameter-problem"

    public var number: UInt8 {
        switch self {
        case .echoReply: return 0
        case .destinationUnreachable: return 3
        case .echoRequest: return 8
        case .timeExceeded: return 11
        case .parameterProblem: return 12
        }
    }
    public static func < (a: Self, b: Self) -> Bool { a.number < b.number }
}

public enum ICMPv6Type: String, Sendable, Equatable, Comparable, CaseIterable {
    case destinationUnreachable = "destination-unreachable"
    case packetTooBig = "packet-too-big"
    case timeExceeded = "time-exceeded"
    case parameterProblem = "parameter-problem"
    case echoRequest = "echo-request"
    case echoReply = "echo-reply"
    case routerSolicit = "nd-router-solicit"
    case routerAdvert = "nd-router-advert"
    case neighborSolicit = "nd-neighbor-solicit"
    case neighborAdvert = "nd-neighbor-advert"

    public var number: UInt8 {
        switch self {
        case .destinationUnreachable: return 1
        case .packetTooBig: return 2
        case .timeExceeded: return 3
        case .parameterProblem: return 4
        case .echoRequest: return 128
        case .echoReply: return 129
        case .routerSolicit: return 133
        case .routerAdvert: return 134
        case .neighborSolicit: return 135
        case .neighborAdvert: return 136
        }
    }
    public static func < (a: Self, b: Self) -> Bool { a.number < b.number }
}

/// What a rule does besides its verdict.
public enum Statement: Sendable, Equatable {
    /// Packet and byte counts are nil when compiled and filled in when read from the kernel.
    case counter(packets: UInt64?, bytes: UInt64?)
    /// `limit rate 10/minute burst 5 packets`: the rule goes on only while under the rate.
    case limit(rate: UInt64, per: RateUnit, burst: UInt32)
    /// `log prefix "fwctl-deny: "`
    case log(prefix: String)
    /// `redirect to :3130` (nat chains): the connection goes to this port on the local host;
    /// a terminal statement (the packet is accepted by nat).
    case redirect(port: UInt16)
    /// `ct original zone set 18007` (raw-priority chains, before conntrack): the connection
    /// this packet opens is tracked in its own zone for the original direction; replies
    /// still find it from zone 0.
    case ctZone(UInt16)

    public static let counter = Statement.counter(packets: nil, bytes: nil)

    public enum RateUnit: String, Sendable, Equatable { case second, minute, hour }
}

public enum Verdict: Sendable, Equatable {
    case accept
    case drop
    case reject(RejectKind)
    case jump(String)

    public enum RejectKind: String, Sendable, Equatable {
        /// `reject with tcp reset`
        case tcpReset = "tcp reset"
        /// `reject with icmpx admin-prohibited`
        case adminProhibited = "icmpx admin-prohibited"
    }
}
