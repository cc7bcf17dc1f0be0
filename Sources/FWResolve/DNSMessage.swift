import CLdns
import FWPolicy
#if canImport(Glibc)
import Glibc
#endif

// The message layer of the DNS filter (`fwctl watch`): every byte here comes from a
// sandboxed client or from a server's reply, so nothing is force-unwrapped, every index
// is checked first, and arithmetic on values read from the wire cannot trap. ldns parses
// and encodes; the few bytes written by hand (a 12-byte header, a TTL) are fixed-size.

/// A query as the filter received it. Only `DNSMessage.parseQuery` makes one, so a
/// policy can trust `name` and `type`: ldns decoded them, the question is the only one
/// and is written uncompressed, exactly as `wire` carries it to the servers (no parser
/// of ours and a server's can read two different names from it).
public struct DNSQueryMessage: Sendable, Equatable {
    public let id: UInt16
    /// The question name, lower case, no trailing dot ("" for the root). ldns writes a
    /// byte outside printable ASCII as \DDD and a dot inside a label as \., so a label
    /// with odd bytes never reads as a name a policy lists.
    public let name: String
    /// QTYPE: any type, A and AAAA as much as TXT, NULL or ANY.
    public let type: UInt16
    /// The bytes as received, forwarded unchanged (id, flags, EDNS and all), so the
    /// server's answer fits what the client asked for.
    public let wire: [UInt8]
    /// The header's flags (bytes 2 and 3): opcode, RD and CD are copied into replies.
    let flags: UInt16
    /// The question entry (name, type, class) as it stands in `wire` right after the
    /// header: copied into the filter's own replies, compared with a server's.
    let question: [UInt8]
}

/// What to do with bytes that arrived on the filter's port. A bad query gets an answer
/// so the client does not wait for its timeout; a response never does, since two
/// forwarders answering each other's answers would loop.
public enum DNSQueryParse: Sendable, Equatable {
    case query(DNSQueryMessage)
    /// Not acceptable; send these bytes back: FORMERR for a malformed query or one
    /// without exactly one question, NOTIMP for an opcode other than QUERY, REFUSED for a
    /// class other than IN (fwctl only puts IN addresses in its sets).
    case reply([UInt8])
    /// Not worth an answer: shorter than a header (no id to answer with), or QR set.
    case drop
}

/// A server's reply, read for the filter: the addresses the client may connect to, which
/// must be in the firewall's sets before `wire` is released to the client.
public struct DNSForwardedAnswer: Sendable, Equatable {
    /// The header's RCODE (4 bits).
    public var rcode: UInt8
    /// The A and AAAA records the client would use: those reachable from the question
    /// name through the answer's CNAME records. Sorted (IPv4 first), unique.
    public var addresses: [IPAddress]
    /// The least TTL along that chain and of the address records, at most the cap: how
    /// long the client may cache them. Nil without addresses.
    public var ttl: UInt32?
    /// What to send to the client (without the TCP length prefix).
    public var wire: [UInt8]

    public init(rcode: UInt8, addresses: [IPAddress], ttl: UInt32?, wire: [UInt8]) {
        self.rcode = rcode
        self.addresses = addresses
        self.ttl = ttl
        self.wire = wire
    }
}

/// Reads and writes the messages of the DNS filter: the clients' queries, the filter's
/// own replies, and the servers' answers on their way back.
public enum DNSMessage {
    // RCODE values (RFC 1035 4.1.1).
    public static let noError: UInt8 = 0
    public static let formatError: UInt8 = 1
    public static let serverFailure: UInt8 = 2
    public static let nameError: UInt8 = 3
    public static let notImplemented: UInt8 = 4
    public static let refused: UInt8 = 5

    /// Classifies bytes from a client; see `DNSQueryParse`. Any reply it makes carries the
    /// query's id.
    public static func parseQuery(_ bytes: [UInt8]) -> DNSQueryParse {
        guard let header = DNSHeader(bytes), !header.isResponse else { return .drop }
        guard header.opcode == 0 else {
            return .reply(header.reply(rcode: notImplemented, question: []))
        }
        let malformed = DNSQueryParse.reply(header.reply(rcode: formatError, question: []))
        guard let pkt = LDNSPacket.parse(bytes) else { return malformed }
        defer { ldns_pkt_free(pkt) }
        guard ldns_pkt_qdcount(pkt) == 1, let list = ldns_pkt_question(pkt), ldns_rr_list_rr_count(list) == 1,
              let rr = ldns_rr_list_rr(list, 0), let name = DNSResponse.domainName(ldns_rr_owner(rr)),
              let question = questionWire(rr),
              bytes.count >= DNSHeader.size + question.count,
              bytes[DNSHeader.size..<(DNSHeader.size + question.count)].elementsEqual(question)
        else { return malformed }
        let query = DNSQueryMessage(id: header.id, name: name, type: UInt16(truncatingIfNeeded: ldns_rr_get_type(rr).rawValue),
                                    wire: bytes, flags: header.flags, question: question)
        guard ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN else { return .reply(reply(to: query, rcode: refused)) }
        return .query(query)
    }

    /// A reply with the query's id, opcode and question, RD and CD copied, QR and RA set,
    /// and `rcode` (NXDOMAIN, SERVFAIL, REFUSED...; only its low 4 bits fit), no records.
    public static func reply(to query: DNSQueryMessage, rcode: UInt8) -> [UInt8] {
        DNSHeader(id: query.id, flags: query.flags).reply(rcode: rcode, question: query.question)
    }

    /// Reads a server's reply to `query`: nil unless id, QR, opcode and the question match
    /// and ldns can parse it. Collects the A and AAAA records reachable from the question
    /// name through the answer's CNAME records (the walk `FamilyLookup` does for `fwctl
    /// resolve`: loops and chains over 8 links give no addresses) and their least TTL,
    /// and lowers every record's TTL above `capTTL` to `capTTL` in place (the EDNS OPT
    /// record's TTL field holds flags and is kept), so no client caches an address longer
    /// than the firewall keeps it. Only TTL bytes change: the message keeps its size and
    /// everything else. A truncated reply (TC) may stop mid-record: it is relayed unchanged
    /// with no addresses, so the client asks again over TCP; its question, if it has one,
    /// must still match.
    public static func readAnswer(_ reply: [UInt8], to query: DNSQueryMessage, capTTL: UInt32) -> DNSForwardedAnswer? {
        guard let header = DNSHeader(reply), header.id == query.id, header.isResponse, header.opcode == 0 else {
            return nil
        }
        let asksOurQuestion = header.questions == 1 && sameQuestion(reply, query.question)
        if header.isTruncated {
            guard header.questions == 0 || asksOurQuestion else { return nil }
            return DNSForwardedAnswer(rcode: header.rcode, addresses: [], ttl: nil, wire: reply)
        }
        guard asksOurQuestion else { return nil }
        guard let pkt = LDNSPacket.parse(reply) else { return nil }
        let response = DNSResponse(pkt)
        ldns_pkt_free(pkt)
        var wire = reply
        guard capTTLs(in: &wire, to: capTTL) else { return nil }
        // A compression pointer may point into bytes a TTL occupies, so capping that TTL
        // changes a name: the client would read other owners (and reach other addresses)
        // than the sets got. The capped message must read as the same records, TTLs capped.
        // Found by Fuzz/FuzzDNS.
        if wire != reply {
            guard let capped = LDNSPacket.parse(wire) else { return nil }
            let same = DNSResponse(capped) == response.cappingTTLs(at: capTTL)
            ldns_pkt_free(capped)
            guard same else { return nil }
        }
        let (addresses, ttl) = reachableAddresses(response, from: query.name)
        return DNSForwardedAnswer(rcode: header.rcode, addresses: addresses, ttl: ttl.map { min($0, capTTL) },
                                  wire: wire)
    }

    // MARK: - Pieces

    /// The question entry as ldns encodes it: the name uncompressed, its case kept.
    private static func questionWire(_ rr: UnsafeMutablePointer<ldns_rr>) -> [UInt8]? {
        var buffer: UnsafeMutablePointer<UInt8>?
        var size = 0
        guard ldns_rr2wire(&buffer, rr, Int32(LDNS_SECTION_QUESTION.rawValue), &size) == LDNS_STATUS_OK,
              let buffer else { return nil }
        defer { free(buffer) }
        return Array(UnsafeBufferPointer(start: buffer, count: size))
    }

    /// Whether the question right after `reply`'s header is `question`, the name compared
    /// without regard to ASCII case (servers may echo it with other case). A label length
    /// (at most 63) never equals a folded letter, so comparing byte by byte compares the
    /// labels too; type and class must be equal to the bit.
    static func sameQuestion(_ reply: [UInt8], _ question: [UInt8]) -> Bool {
        let start = DNSHeader.size
        guard question.count >= 5, reply.count >= start + question.count else { return false }
        let nameLength = question.count - 4
        for i in 0..<question.count {
            let a = reply[start + i], b = question[i]
            if i < nameLength ? foldCase(a) != foldCase(b) : a != b { return false }
        }
        return true
    }

    private static func foldCase(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte
    }

    /// The A and AAAA addresses a client reaches from `name` through the answer's CNAME
    /// records, and their least TTL (nil without addresses). Only a NOERROR answer counts.
    static func reachableAddresses(_ response: DNSResponse, from name: String) -> ([IPAddress], UInt32?) {
        guard response.rcode == noError else { return ([], nil) }
        let outcomes = RecordType.allCases.map { type -> FamilyOutcome in
            var lookup = FamilyLookup(name: name, type: type)
            // nil: the chain ends at a name without records of this type in this answer.
            return lookup.absorb(response) ?? .nodata(chain: lookup.chain)
        }
        let merged = NameResolution(name: name, a: outcomes[0], aaaa: outcomes[1])
        return (merged.addresses, merged.ttl)
    }

    /// Lowers every TTL above `cap` to `cap` in the records of `message`, in place. The OPT
    /// pseudo-record (type 41) is skipped: its TTL field is the extended RCODE, EDNS
    /// version and flags. False when the sections do not fit the message, or when ldns
    /// reads a record's extent differently (`ldnsReadsRecord`).
    static func capTTLs(in message: inout [UInt8], to cap: UInt32) -> Bool {
        guard let header = DNSHeader(message) else { return false }
        var offset = DNSHeader.size
        for _ in 0..<header.questions {
            guard let end = endOfName(message, from: offset), end <= message.count - 4 else { return false }
            offset = end + 4
        }
        let records = Int(header.answers) + Int(header.authorities) + Int(header.additionals)
        for _ in 0..<records {
            guard let end = endOfName(message, from: offset), end <= message.count - 10,
                  ldnsReadsRecord(message, at: offset, endingAt: end + 10 + (Int(message[end + 8]) << 8 | Int(message[end + 9])))
            else { return false }
            let type = UInt16(message[end]) << 8 | UInt16(message[end + 1])
            let ttl = message[(end + 4)..<(end + 8)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            if type != 41 && ttl > cap {
                message[end + 4] = UInt8(truncatingIfNeeded: cap >> 24)
                message[end + 5] = UInt8(truncatingIfNeeded: cap >> 16)
                message[end + 6] = UInt8(truncatingIfNeeded: cap >> 8)
                message[end + 7] = UInt8(truncatingIfNeeded: cap)
            }
            let length = Int(message[end + 8]) << 8 | Int(message[end + 9])
            offset = end + 10 + length
            guard offset <= message.count else { return false }
        }
        return true
    }

    /// Whether ldns reads the record at `start` as ending at `end`, where its RDLENGTH ends
    /// it. ldns reads a record's data by its type and then goes on where that data ended,
    /// not where RDLENGTH says, so for a record whose data is longer or shorter than its
    /// type's (an AAAA with RDLENGTH 17), ldns and this walk (and a client that goes by
    /// RDLENGTH) see different records after it: the addresses put into the sets would not
    /// be those the client reads, and a TTL capped here could be an address byte there.
    /// Found by Fuzz/FuzzDNS.
    private static func ldnsReadsRecord(_ message: [UInt8], at start: Int, endingAt end: Int) -> Bool {
        guard end <= message.count else { return false }
        var rr: UnsafeMutablePointer<ldns_rr>?
        var pos = start
        let status = message.withUnsafeBufferPointer { ldns_wire2rr(&rr, $0.baseAddress, $0.count, &pos, LDNS_SECTION_ANSWER) }
        if let rr { ldns_rr_free(rr) }
        return status == LDNS_STATUS_OK && pos == end
    }

    /// The offset just past the name at `offset`: past its root label, or past the
    /// compression pointer that ends it (the pointer is not followed: only the length
    /// matters here). Nil when the name runs past the end or uses a reserved label type.
    static func endOfName(_ message: [UInt8], from offset: Int) -> Int? {
        var at = offset
        while at >= 0 && at < message.count {
            let length = message[at]
            switch length & 0xc0 {
            case 0xc0: return at + 2 <= message.count ? at + 2 : nil
            case 0: if length == 0 { return at + 1 }
            default: return nil
            }
            at += 1 + Int(length)
        }
        return nil
    }
}

/// The fixed 12-byte header of a DNS message (RFC 1035 4.1.1), read by hand: the filter
/// must answer with the query's id even when ldns cannot parse the rest.
struct DNSHeader {
    static let size = 12

    let id: UInt16
    let flags: UInt16
    var questions: UInt16 = 0, answers: UInt16 = 0, authorities: UInt16 = 0, additionals: UInt16 = 0

    init(id: UInt16, flags: UInt16) {
        self.id = id
        self.flags = flags
    }

    /// Nil when `bytes` is shorter than a header.
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= Self.size else { return nil }
        func word(_ i: Int) -> UInt16 { UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]) }
        id = word(0)
        flags = word(2)
        questions = word(4)
        answers = word(6)
        authorities = word(8)
        additionals = word(10)
    }

    var isResponse: Bool { flags & 0x8000 != 0 }
    var opcode: UInt8 { UInt8(truncatingIfNeeded: (flags >> 11) & 0x0f) }
    var isTruncated: Bool { flags & 0x0200 != 0 }
    var rcode: UInt8 { UInt8(truncatingIfNeeded: flags & 0x000f) }

    /// A reply to the message this header opens: same id and opcode, RD and CD copied, QR
    /// and RA set, `rcode`, then `question` (one entry, or none when empty), no records.
    func reply(rcode: UInt8, question: [UInt8]) -> [UInt8] {
        let copied = flags & (0x7800 | 0x0100 | 0x0010)
        let replyFlags = 0x8000 | 0x0080 | copied | UInt16(rcode & 0x0f)
        let count: UInt8 = question.isEmpty ? 0 : 1
        return [UInt8(id >> 8), UInt8(id & 0xff), UInt8(replyFlags >> 8), UInt8(replyFlags & 0xff),
                0, count, 0, 0, 0, 0, 0, 0] + question
    }
}
