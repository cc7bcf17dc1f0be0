import CLdns
import FWPolicy
#if canImport(Glibc)
import Glibc
#endif

/// The two record types fwctl asks for.
enum RecordType: UInt16, CaseIterable, Sendable {
    case a = 1
    case aaaa = 28

    var name: String { self == .a ? "A" : "AAAA" }
    var ldnsType: ldns_rr_type { self == .a ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA }
    var family: AddressFamily { self == .a ? .ipv4 : .ipv6 }
}

/// One question in wire format, built by ldns. The id stays the same over retries so a
/// late answer to an earlier attempt is still accepted.
struct DNSQuery: Sendable {
    let name: String
    let type: RecordType
    let id: UInt16
    let wire: [UInt8]

    /// Advertised EDNS buffer size: the DNS flag day 2020 value, large enough that
    /// ordinary answers need no TCP retry and small enough not to fragment.
    static let ednsBufferSize: UInt16 = 1232

    /// Nil when ldns does not accept `name` as a domain name (empty label, label over
    /// 63 octets, name over 255).
    init?(name: String, type: RecordType, id: UInt16 = .random(in: .min ... .max)) {
        guard !name.isEmpty, let owner = ldns_dname_new_frm_str(name) else { return nil }
        // ldns_pkt_query_new takes ownership of `owner`.
        guard let pkt = ldns_pkt_query_new(owner, type.ldnsType, LDNS_RR_CLASS_IN, UInt16(LDNS_RD)) else {
            return nil
        }
        defer { ldns_pkt_free(pkt) }
        ldns_pkt_set_id(pkt, id)
        ldns_pkt_set_edns_udp_size(pkt, Self.ednsBufferSize)
        var buffer: UnsafeMutablePointer<UInt8>?
        var size = 0
        guard ldns_pkt2wire(&buffer, pkt, &size) == LDNS_STATUS_OK, let buffer else { return nil }
        defer { free(buffer) }
        self.name = name
        self.type = type
        self.id = id
        self.wire = Array(UnsafeBufferPointer(start: buffer, count: size))
    }
}

/// One answer-section record that matters for address resolution.
struct AnswerRecord: Equatable, Sendable {
    enum Data: Equatable, Sendable {
        case address(IPAddress)
        case cname(String)
    }
    let owner: String
    let ttl: UInt32
    let data: Data
}

/// A parsed answer: the rcode and the A, AAAA and CNAME records of the answer section.
struct DNSResponse: Equatable, Sendable {
    let rcode: UInt8
    let records: [AnswerRecord]

    static let noError: UInt8 = 0, serverFailure: UInt8 = 2, nameError: UInt8 = 3, refused: UInt8 = 5

    /// The same records with no TTL above `cap`.
    func cappingTTLs(at cap: UInt32) -> DNSResponse {
        DNSResponse(rcode: rcode, records: records.map { AnswerRecord(owner: $0.owner, ttl: min($0.ttl, cap), data: $0.data) })
    }

    var rcodeName: String {
        let names = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                     "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"]
        return Int(rcode) < names.count ? names[Int(rcode)] : "RCODE\(rcode)"
    }
}

/// What a datagram received on a query's socket turned out to be.
enum ReplyMatch: Equatable {
    /// Not an answer to this query (other id or question): a late or stray packet.
    case notOurs
    /// The answer did not fit; ask again over TCP.
    case truncated
    /// Carries this query's id but ldns cannot parse it.
    case malformed
    case response(DNSResponse)
}

extension DNSQuery {
    /// Checks id, QR and question before trusting anything in `reply`.
    func match(_ reply: [UInt8]) -> ReplyMatch {
        guard reply.count >= 12, UInt16(reply[0]) << 8 | UInt16(reply[1]) == id, reply[2] & 0x80 != 0 else {
            return .notOurs
        }
        // A truncated answer may be cut mid-record, so only its header is trusted.
        if reply[2] & 0x02 != 0 { return .truncated }
        guard let pkt = LDNSPacket.parse(reply) else { return .malformed }
        defer { ldns_pkt_free(pkt) }
        guard asksThisQuestion(ldns_pkt_question(pkt)) else { return .notOurs }
        return .response(DNSResponse(pkt))
    }

    private func asksThisQuestion(_ question: UnsafeMutablePointer<ldns_rr_list>?) -> Bool {
        guard let question, ldns_rr_list_rr_count(question) == 1,
              let rr = ldns_rr_list_rr(question, 0) else { return false }
        return ldns_rr_get_type(rr) == type.ldnsType && ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN
            && DNSResponse.domainName(ldns_rr_owner(rr)) == name
    }
}

extension DNSResponse {
    /// The rcode and answer records of a packet ldns parsed; nothing else is read.
    init(_ pkt: UnsafeMutablePointer<ldns_pkt>) {
        self.init(rcode: UInt8(truncatingIfNeeded: ldns_pkt_get_rcode(pkt).rawValue),
                  records: Self.records(ldns_pkt_answer(pkt)))
    }

    private static func records(_ list: UnsafeMutablePointer<ldns_rr_list>?) -> [AnswerRecord] {
        guard let list else { return [] }
        return (0..<ldns_rr_list_rr_count(list)).compactMap { i in
            guard let rr = ldns_rr_list_rr(list, i), ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN,
                  let owner = domainName(ldns_rr_owner(rr)), let data = recordData(rr) else { return nil }
            return AnswerRecord(owner: owner, ttl: ldns_rr_ttl(rr), data: data)
        }
    }

    private static func recordData(_ rr: UnsafeMutablePointer<ldns_rr>) -> AnswerRecord.Data? {
        guard ldns_rr_rd_count(rr) == 1, let rdf = ldns_rr_rdf(rr, 0) else { return nil }
        switch ldns_rr_get_type(rr) {
        case LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA:
            let bytes = Array(UnsafeBufferPointer(start: ldns_rdf_data(rdf), count: ldns_rdf_size(rdf)))
            return IPAddress(bytes: bytes).map { .address($0) }
        case LDNS_RR_TYPE_CNAME:
            return domainName(rdf).map { .cname($0) }
        default:
            return nil
        }
    }

    /// A domain name as fwctl writes it: lower case, no trailing dot, "" for the root.
    /// ldns escapes every byte outside printable ASCII (\DDD) and the dot, backslash,
    /// semicolon and parentheses inside a label (\.), so the text is ASCII and two names
    /// are equal exactly when their labels are, without regard to ASCII case.
    static func domainName(_ rdf: UnsafeMutablePointer<ldns_rdf>?) -> String? {
        guard let rdf, let text = ldns_rdf2str(rdf) else { return nil }
        defer { free(text) }
        return DNSName.normalize(String(cString: text))
    }
}
