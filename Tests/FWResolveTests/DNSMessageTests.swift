import CLdns
@testable import FWResolve
import FWPolicy
import FWTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Messages built by hand and with ldns, for the tests of the DNS filter's message layer.
enum DNSBytes {
    /// A query built byte by byte: `labels` as given (no checks), then type and class.
    static func query(id: UInt16 = 0x1234, flags: UInt16 = 0x0100, labels: [[UInt8]], type: UInt16 = 1,
                      qclass: UInt16 = 1, questions: UInt16 = 1) -> [UInt8] {
        var bytes = header(id: id, flags: flags, questions: questions)
        for label in labels { bytes += [UInt8(label.count)] + label }
        return bytes + [0] + word(type) + word(qclass)
    }

    static func query(_ name: String, id: UInt16 = 0x1234, flags: UInt16 = 0x0100, type: UInt16 = 1,
                      qclass: UInt16 = 1) -> [UInt8] {
        query(id: id, flags: flags, labels: name.split(separator: ".").map { Array($0.utf8) }, type: type, qclass: qclass)
    }

    static func header(id: UInt16, flags: UInt16, questions: UInt16, answers: UInt16 = 0) -> [UInt8] {
        word(id) + word(flags) + word(questions) + word(answers) + [0, 0, 0, 0]
    }

    static func word(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }

    /// The parsed query, or a test failure.
    static func parsed(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> DNSQueryMessage {
        guard case .query(let query) = DNSMessage.parseQuery(bytes) else {
            XCTFail("not accepted as a query: \(DNSMessage.parseQuery(bytes))", file: file, line: line)
            throw XCTSkip("no query")
        }
        return query
    }

    /// An answer to `query` built with ldns: the question copied, QR/RA set, then
    /// `records` (zone-file lines) in the answer section and `authority` in the authority
    /// section; EDNS with the DO bit when `edns`.
    static func answer(to query: [UInt8], rcode: UInt8 = 0, records: [String], authority: [String] = [],
                       edns: Bool = true) throws -> [UInt8] {
        var parsed: UnsafeMutablePointer<ldns_pkt>?
        XCTAssertEqual(query.withUnsafeBufferPointer { ldns_wire2pkt(&parsed, $0.baseAddress, $0.count) }, LDNS_STATUS_OK)
        let pkt = try XCTUnwrap(parsed)
        defer { ldns_pkt_free(pkt) }
        ldns_pkt_set_qr(pkt, 1)
        ldns_pkt_set_ra(pkt, 1)
        ldns_pkt_set_rcode(pkt, rcode)
        for (section, lines) in [(LDNS_SECTION_ANSWER, records), (LDNS_SECTION_AUTHORITY, authority)] {
            for line in lines {
                var rr: UnsafeMutablePointer<ldns_rr>?
                XCTAssertEqual(ldns_rr_new_frm_str(&rr, line, 0, nil, nil), LDNS_STATUS_OK, line)
                XCTAssertNotEqual(ldns_pkt_push_rr(pkt, section, try XCTUnwrap(rr)), 0)
            }
        }
        if edns {
            ldns_pkt_set_edns_udp_size(pkt, 1232)
            ldns_pkt_set_edns_do(pkt, 1)
        }
        return try wire(pkt)
    }

    static func wire(_ pkt: UnsafeMutablePointer<ldns_pkt>) throws -> [UInt8] {
        var buffer: UnsafeMutablePointer<UInt8>?
        var size = 0
        XCTAssertEqual(ldns_pkt2wire(&buffer, pkt, &size), LDNS_STATUS_OK)
        let bytes = try XCTUnwrap(buffer)
        defer { free(bytes) }
        return Array(UnsafeBufferPointer(start: bytes, count: size))
    }

    /// Parses `bytes` with ldns and hands the packet to `body`.
    static func withPacket<T>(_ bytes: [UInt8], _ body: (UnsafeMutablePointer<ldns_pkt>) throws -> T) throws -> T {
        var parsed: UnsafeMutablePointer<ldns_pkt>?
        XCTAssertEqual(bytes.withUnsafeBufferPointer { ldns_wire2pkt(&parsed, $0.baseAddress, $0.count) }, LDNS_STATUS_OK)
        let pkt = try XCTUnwrap(parsed)
        defer { ldns_pkt_free(pkt) }
        return try body(pkt)
    }

    /// Every (type, TTL) of the answer, authority and additional sections.
    static func ttls(_ bytes: [UInt8]) throws -> [(UInt16, UInt32)] {
        try withPacket(bytes) { pkt in
            [ldns_pkt_answer(pkt), ldns_pkt_authority(pkt), ldns_pkt_additional(pkt)].flatMap { list -> [(UInt16, UInt32)] in
                guard let list else { return [] }
                return (0..<ldns_rr_list_rr_count(list)).compactMap { i in
                    ldns_rr_list_rr(list, i).map { (UInt16(ldns_rr_get_type($0).rawValue), ldns_rr_ttl($0)) }
                }
            }
        }
    }
}

/// parseQuery and reply(to:rcode:): what the filter makes of a client's bytes.
final class DNSQueryParseTests: XCTestCase {
    private func rcode(_ bytes: [UInt8]) -> UInt8 { bytes[3] & 0x0f }

    /// A reply the filter makes: at least a header, the query's id, QR set.
    private func assertReply(_ result: DNSQueryParse, id: UInt16, rcode expected: UInt8,
                             file: StaticString = #filePath, line: UInt = #line) {
        guard case .reply(let bytes) = result else {
            return XCTFail("expected a reply, got \(result)", file: file, line: line)
        }
        XCTAssertGreaterThanOrEqual(bytes.count, 12, file: file, line: line)
        guard bytes.count >= 12 else { return }
        XCTAssertEqual(UInt16(bytes[0]) << 8 | UInt16(bytes[1]), id, "id", file: file, line: line)
        XCTAssertEqual(bytes[2] & 0x80, 0x80, "QR", file: file, line: line)
        XCTAssertEqual(rcode(bytes), expected, "rcode", file: file, line: line)
    }

    func testAQueryBuiltByLdnsIsAccepted() throws {
        let wire = try XCTUnwrap(DNSQuery(name: "Host.Example.TEST", type: .a, id: 0xbeef)).wire
        let query = try DNSBytes.parsed(wire)
        XCTAssertEqual(query.id, 0xbeef)
        XCTAssertEqual(query.name, "host.example.test")
        XCTAssertEqual(query.type, 1)
        XCTAssertEqual(query.wire, wire, "forwarded as received, EDNS included")
    }

    func testAAAAQueryBuiltByHandIsAccepted() throws {
        let query = try DNSBytes.parsed(DNSBytes.query("www.example.test.", id: 7, type: 28))
        XCTAssertEqual(query.id, 7)
        XCTAssertEqual(query.name, "www.example.test")
        XCTAssertEqual(query.type, 28)
    }

    func testRootNameIsEmpty() throws {
        let query = try DNSBytes.parsed(DNSBytes.query(labels: [], type: 2))
        XCTAssertEqual(query.name, "")
        XCTAssertEqual(query.type, 2)
    }

    func testTXTWithARandom63OctetLabelIsAQueryLikeAnyOther() throws {
        var random = SplitMix64(seed: 63)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        let label = (0..<63).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
        let query = try DNSBytes.parsed(DNSBytes.query(labels: [label, Array("tunnel".utf8), Array("test".utf8)], type: 16))
        XCTAssertEqual(query.name, String(decoding: label, as: UTF8.self) + ".tunnel.test")
        XCTAssertEqual(query.type, 16, "TXT")
    }

    func testA64OctetLabelIsMalformed() {
        let bytes = DNSBytes.query(labels: [Array(repeating: 0x61, count: 64), Array("test".utf8)])
        assertReply(DNSMessage.parseQuery(bytes), id: 0x1234, rcode: DNSMessage.formatError)
    }

    func testOddBytesInALabelAreEscapedSoTheyCannotPassForAnotherName() throws {
        // One label "evil.test" (with a dot inside) under "allowed": not "evil.test.allowed".
        let dotted = try DNSBytes.parsed(DNSBytes.query(labels: [Array("evil.test".utf8), Array("allowed".utf8)]))
        XCTAssertEqual(dotted.name, "evil\\.test.allowed")
        let binary = try DNSBytes.parsed(DNSBytes.query(labels: [[0x00, 0xff, 0x41], Array("test".utf8)]))
        XCTAssertEqual(binary.name, "\\000\\255a.test")
    }

    func testANYAndNULLAreQueries() throws {
        XCTAssertEqual(try DNSBytes.parsed(DNSBytes.query("x.test", type: 255)).type, 255)
        XCTAssertEqual(try DNSBytes.parsed(DNSBytes.query("x.test", type: 10)).type, 10)
    }

    func testNoQuestionIsFORMERR() {
        let bytes = DNSBytes.header(id: 0x0a0b, flags: 0x0100, questions: 0)
        assertReply(DNSMessage.parseQuery(bytes), id: 0x0a0b, rcode: DNSMessage.formatError)
    }

    func testTwoQuestionsAreFORMERR() {
        var bytes = DNSBytes.query("a.test", id: 0x0c0d)
        bytes[5] = 2
        bytes += [1, 0x62, 4] + Array("test".utf8) + [0, 0, 1, 0, 1]
        assertReply(DNSMessage.parseQuery(bytes), id: 0x0c0d, rcode: DNSMessage.formatError)
    }

    func testAResponseIsDropped() {
        XCTAssertEqual(DNSMessage.parseQuery(DNSBytes.query("a.test", flags: 0x8180)), .drop)
        XCTAssertEqual(DNSMessage.parseQuery(DNSBytes.header(id: 1, flags: 0x8000, questions: 0)), .drop)
    }

    func testNOTIFYIsNOTIMPWithItsOpcode() {
        let bytes = DNSBytes.query("zone.test", id: 0x4444, flags: 4 << 11, type: 6)
        let result = DNSMessage.parseQuery(bytes)
        assertReply(result, id: 0x4444, rcode: DNSMessage.notImplemented)
        if case .reply(let reply) = result { XCTAssertEqual((reply[2] >> 3) & 0x0f, 4) }
    }

    func testShorterThanAHeaderIsDropped() {
        for count in 0..<12 {
            XCTAssertEqual(DNSMessage.parseQuery(Array(repeating: 0, count: count)), .drop, "\(count) bytes")
            XCTAssertEqual(DNSMessage.parseQuery(Array(DNSBytes.query("a.test").prefix(count))), .drop)
        }
    }

    func testHeaderAloneIsFORMERR() {
        assertReply(DNSMessage.parseQuery(Array(DNSBytes.query("a.test", id: 0x7777).prefix(12))), id: 0x7777,
                    rcode: DNSMessage.formatError)
    }

    func testLabelRunningPastTheEndIsFORMERR() {
        let bytes = DNSBytes.header(id: 0x0102, flags: 0x0100, questions: 1) + [10] + Array("abc".utf8)
        assertReply(DNSMessage.parseQuery(bytes), id: 0x0102, rcode: DNSMessage.formatError)
        let noType = Array(DNSBytes.query("a.test", id: 0x0103).dropLast(3))
        assertReply(DNSMessage.parseQuery(noType), id: 0x0103, rcode: DNSMessage.formatError)
    }

    func testCompressionPointerLoopIsFORMERR() {
        // The name at 12 points to itself.
        let selfLoop = DNSBytes.header(id: 0x0201, flags: 0x0100, questions: 1) + [0xc0, 12, 0, 1, 0, 1]
        assertReply(DNSMessage.parseQuery(selfLoop), id: 0x0201, rcode: DNSMessage.formatError)
        // "a" then a pointer to 14, which points back to 12.
        let twoStep = DNSBytes.header(id: 0x0202, flags: 0x0100, questions: 1) + [1, 0x61, 0xc0, 12, 0xc0, 14, 0, 1, 0, 1]
        assertReply(DNSMessage.parseQuery(twoStep), id: 0x0202, rcode: DNSMessage.formatError)
    }

    func testCompressedQuestionNameIsFORMERR() {
        // A pointer into the header: ldns reads a name there; a server might read another.
        let bytes = DNSBytes.header(id: 0x0203, flags: 0x0100, questions: 1) + [0xc0, 5, 0, 1, 0, 1]
        assertReply(DNSMessage.parseQuery(bytes), id: 0x0203, rcode: DNSMessage.formatError)
    }

    func testClassOtherThanINIsREFUSEDWithTheQuestion() throws {
        let bytes = DNSBytes.query("version.bind", id: 0x0301, type: 16, qclass: 3)
        let result = DNSMessage.parseQuery(bytes)
        assertReply(result, id: 0x0301, rcode: DNSMessage.refused)
        guard case .reply(let reply) = result else { return }
        XCTAssertEqual(Array(reply[12...]), Array(bytes[12...]))
    }

    func testReplyRoundTripsThroughLdns() throws {
        let query = try DNSBytes.parsed(DNSBytes.query("Mixed.Case.test", id: 0x5150, flags: 0x0110, type: 16))
        let reply = DNSMessage.reply(to: query, rcode: DNSMessage.nameError)
        try DNSBytes.withPacket(reply) { pkt in
            XCTAssertEqual(ldns_pkt_id(pkt), 0x5150)
            XCTAssertNotEqual(ldns_pkt_qr(pkt), 0)
            XCTAssertNotEqual(ldns_pkt_rd(pkt), 0)
            XCTAssertNotEqual(ldns_pkt_ra(pkt), 0)
            XCTAssertNotEqual(ldns_pkt_cd(pkt), 0)
            XCTAssertEqual(ldns_pkt_aa(pkt), 0)
            XCTAssertEqual(ldns_pkt_get_opcode(pkt), LDNS_PACKET_QUERY)
            XCTAssertEqual(ldns_pkt_get_rcode(pkt).rawValue, 3)
            XCTAssertEqual(ldns_pkt_qdcount(pkt), 1)
            XCTAssertEqual(ldns_pkt_ancount(pkt) + ldns_pkt_nscount(pkt) + ldns_pkt_arcount(pkt), 0)
            let question = try XCTUnwrap(ldns_rr_list_rr(ldns_pkt_question(pkt), 0))
            XCTAssertEqual(ldns_rr_get_type(question).rawValue, 16)
            XCTAssertEqual(ldns_rr_get_class(question), LDNS_RR_CLASS_IN)
            XCTAssertEqual(DNSResponse.domainName(ldns_rr_owner(question)), "mixed.case.test")
        }
        XCTAssertEqual(Array(reply[12...]), Array(query.wire[12...]), "the question as asked, case kept")
        let withoutRD = try DNSBytes.parsed(DNSBytes.query("a.test", flags: 0))
        XCTAssertEqual(DNSMessage.reply(to: withoutRD, rcode: DNSMessage.serverFailure)[2], 0x80, "QR only")
    }

    func testRandomBytesNeverCrashAndEveryReplyKeepsTheId() {
        var random = SplitMix64(seed: 0xf00d)
        let seeds = [DNSBytes.query("www.example.test"),
                     (try? XCTUnwrap(DNSQuery(name: "a.test", type: .aaaa)).wire) ?? [],
                     DNSBytes.query("x.test", type: 255)]
        var counts = (query: 0, reply: 0, drop: 0)
        for i in 0..<5000 {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = (0..<Int(random.next() % 80)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                if bytes.count > 2, random.next() % 2 == 0 { bytes[2] &= 0x07 }  // a query, opcode 0
            } else {
                // A valid query with a few bytes changed, cut or lengthened: deeper paths.
                bytes = seeds[i % seeds.count]
                for _ in 0..<(1 + random.next() % 4) where !bytes.isEmpty {
                    bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
                }
                switch random.next() % 3 {
                case 0: bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count + 1))))
                case 1: bytes += (0..<Int(random.next() % 8)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                default: break
                }
            }
            switch DNSMessage.parseQuery(bytes) {
            case .drop:
                counts.drop += 1
                XCTAssertTrue(bytes.count < 12 || bytes[2] & 0x80 != 0)
            case .reply(let reply):
                counts.reply += 1
                XCTAssertGreaterThanOrEqual(reply.count, 12)
                XCTAssertEqual(Array(reply.prefix(2)), Array(bytes.prefix(2)), "id")
                XCTAssertEqual(reply.count >= 3 ? reply[2] & 0x80 : 0, 0x80, "QR")
            case .query(let query):
                counts.query += 1
                XCTAssertEqual(query.wire, bytes)
                XCTAssertEqual(query.id, UInt16(bytes[0]) << 8 | UInt16(bytes[1]))
                XCTAssertEqual(DNSMessage.reply(to: query, rcode: 3).prefix(2), bytes.prefix(2))
            }
        }
        XCTAssertGreaterThan(counts.query, 100, "the mutations reach the accepted path")
        XCTAssertGreaterThan(counts.reply, 100)
        XCTAssertGreaterThan(counts.drop, 100)
    }
}

/// readAnswer: what the filter takes from a server's reply and passes to the client.
final class DNSAnswerTests: XCTestCase {
    private let query = DNSBytes.query("www.example.test", id: 0x2222, type: 1)

    private func message() throws -> DNSQueryMessage { try DNSBytes.parsed(query) }

    private let chain = [
        "www.example.test. 3600 IN CNAME cdn.example.test.",
        "cdn.example.test. 120 IN CNAME edge.cdn.test.",
        "edge.cdn.test. 300 IN A 192.0.2.7",
        "edge.cdn.test. 300 IN A 192.0.2.5",
        "edge.cdn.test. 90 IN AAAA 2001:db8::5",
        "other.test. 5 IN A 198.51.100.1",
    ]

    func testCNAMEChainGivesItsAddressesTheLeastTTLAndCappedTTLs() throws {
        let reply = try DNSBytes.answer(to: query, records: chain, authority: ["example.test. 86400 IN NS ns.example.test."])
        let answer = try XCTUnwrap(DNSMessage.readAnswer(reply, to: try message(), capTTL: 200))
        XCTAssertEqual(answer.rcode, 0)
        XCTAssertEqual(answer.addresses, ["192.0.2.5", "192.0.2.7", "2001:db8::5"].map { IPAddress($0)! },
                       "the chain's A and AAAA, not other.test's")
        XCTAssertEqual(answer.ttl, 90)
        XCTAssertEqual(answer.wire.count, reply.count, "only TTL bytes change")
        XCTAssertEqual(try DNSBytes.ttls(answer.wire).map(\.1), [200, 120, 200, 200, 90, 5, 200])
        try DNSBytes.withPacket(answer.wire) { pkt in
            XCTAssertNotEqual(ldns_pkt_edns_do(pkt), 0, "the OPT record's flags are kept")
            XCTAssertEqual(ldns_pkt_edns_udp_size(pkt), 1232)
        }
        XCTAssertEqual(try DNSBytes.ttls(reply).map(\.1), [3600, 120, 300, 300, 90, 5, 86400], "the input is unchanged")
    }

    func testTTLIsCappedWhenTheChainIsLonger() throws {
        let reply = try DNSBytes.answer(to: query, records: chain)
        let answer = try XCTUnwrap(DNSMessage.readAnswer(reply, to: try message(), capTTL: 30))
        XCTAssertEqual(answer.ttl, 30)
        XCTAssertEqual(try DNSBytes.ttls(answer.wire).map(\.1), [30, 30, 30, 30, 30, 5])
    }

    func testCompressedNamesAreWalked() throws {
        // ldns compresses owner names and CNAME targets; make sure that happened here.
        let reply = try DNSBytes.answer(to: query, records: chain, edns: false)
        XCTAssertTrue(reply.contains(0xc0))
        let answer = try XCTUnwrap(DNSMessage.readAnswer(reply, to: try message(), capTTL: 60))
        XCTAssertEqual(try DNSBytes.ttls(answer.wire).map(\.1), [60, 60, 60, 60, 60, 5])
    }

    func testNoAddressesWithoutAChainToThem() throws {
        let loop = try DNSBytes.answer(to: query, records: [
            "www.example.test. 60 IN CNAME a.test.", "a.test. 60 IN CNAME www.example.test.", "b.test. 60 IN A 192.0.2.1",
        ])
        let looped = try XCTUnwrap(DNSMessage.readAnswer(loop, to: try message(), capTTL: 60))
        XCTAssertEqual(looped.addresses, [])
        XCTAssertNil(looped.ttl)
        let long = try DNSBytes.answer(to: query, records: ["www.example.test. 60 IN CNAME c0.test."]
            + (0...FamilyLookup.maxChain).map { "c\($0).test. 60 IN CNAME c\($0 + 1).test." } + ["c9.test. 60 IN A 192.0.2.1"])
        XCTAssertEqual(DNSMessage.readAnswer(long, to: try message(), capTTL: 60)?.addresses, [], "over 8 links")
        let dangling = try DNSBytes.answer(to: query, records: ["www.example.test. 60 IN CNAME gone.test."])
        let none = try XCTUnwrap(DNSMessage.readAnswer(dangling, to: try message(), capTTL: 60))
        XCTAssertEqual(none.addresses, [])
        XCTAssertNil(none.ttl)
    }

    func testNXDOMAINIsReadWithoutAddresses() throws {
        let reply = try DNSBytes.answer(to: query, rcode: 3, records: [],
                                        authority: ["example.test. 3600 IN SOA ns.test. admin.test. 1 2 3 4 5"])
        let answer = try XCTUnwrap(DNSMessage.readAnswer(reply, to: try message(), capTTL: 10))
        XCTAssertEqual(answer.rcode, 3)
        XCTAssertEqual(answer.addresses, [])
        XCTAssertEqual(try DNSBytes.ttls(answer.wire).map(\.1), [10])
    }

    func testMismatchedIdQuestionOrQRIsNil() throws {
        let reply = try DNSBytes.answer(to: query, records: chain)
        let q = try message()
        var otherId = reply
        otherId[1] ^= 1
        XCTAssertNil(DNSMessage.readAnswer(otherId, to: q, capTTL: 60))
        let otherName = try DNSBytes.answer(to: DNSBytes.query("www.example.tesu", id: 0x2222), records: chain)
        XCTAssertNil(DNSMessage.readAnswer(otherName, to: q, capTTL: 60))
        let otherType = try DNSBytes.answer(to: DNSBytes.query("www.example.test", id: 0x2222, type: 28), records: chain)
        XCTAssertNil(DNSMessage.readAnswer(otherType, to: q, capTTL: 60))
        XCTAssertNil(DNSMessage.readAnswer(query, to: q, capTTL: 60), "the query itself is no answer")
        XCTAssertNil(DNSMessage.readAnswer(Array(reply.prefix(40)), to: q, capTTL: 60), "cut short")
        XCTAssertNil(DNSMessage.readAnswer([], to: q, capTTL: 60))
    }

    func testQuestionCaseMayDiffer() throws {
        let reply = try DNSBytes.answer(to: DNSBytes.query("WWW.Example.TEST", id: 0x2222), records: chain)
        XCTAssertEqual(DNSMessage.readAnswer(reply, to: try message(), capTTL: 60)?.addresses.count, 3)
    }

    func testTruncatedReplyIsRelayedUnchangedWithoutAddresses() throws {
        var reply = try DNSBytes.answer(to: query, records: chain)
        reply[2] |= 0x02
        let cut = Array(reply.prefix(50))
        let answer = try XCTUnwrap(DNSMessage.readAnswer(cut, to: try message(), capTTL: 1))
        XCTAssertEqual(answer, DNSForwardedAnswer(rcode: 0, addresses: [], ttl: nil, wire: cut))
        let headerOnly = DNSBytes.header(id: 0x2222, flags: 0x8382, questions: 0)
        XCTAssertEqual(DNSMessage.readAnswer(headerOnly, to: try message(), capTTL: 1)?.wire, headerOnly)
        var other = try DNSBytes.answer(to: DNSBytes.query("x.test", id: 0x2222), records: [])
        other[2] |= 0x02
        XCTAssertNil(DNSMessage.readAnswer(other, to: try message(), capTTL: 1), "TC for another question")
    }

    func testRandomlyDamagedRepliesNeverCrash() throws {
        var random = SplitMix64(seed: 0xdead)
        let reply = try DNSBytes.answer(to: query, records: chain, authority: ["example.test. 86400 IN NS ns.example.test."])
        let q = try message()
        var accepted = 0
        for _ in 0..<3000 {
            var bytes = reply
            for _ in 0..<(1 + random.next() % 6) {
                let at = 12 + Int(random.next() % UInt64(bytes.count - 12))
                bytes[at] = UInt8(truncatingIfNeeded: random.next())
            }
            if random.next() % 4 == 0 { bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count + 1)))) }
            guard let answer = DNSMessage.readAnswer(bytes, to: q, capTTL: 60) else { continue }
            accepted += 1
            XCTAssertEqual(answer.wire.count, bytes.count)
            XCTAssertEqual(answer.addresses, Array(Set(answer.addresses)).sorted())
            if let ttl = answer.ttl { XCTAssertLessThanOrEqual(ttl, 60) }
        }
        XCTAssertGreaterThan(accepted, 100)
    }

    func testEndOfNameStaysInBounds() {
        XCTAssertNil(DNSMessage.endOfName([], from: 0))
        XCTAssertNil(DNSMessage.endOfName([3, 0x61], from: 0))
        XCTAssertNil(DNSMessage.endOfName([0xc0], from: 0))
        XCTAssertNil(DNSMessage.endOfName([0x40, 0], from: 0), "reserved label type")
        XCTAssertNil(DNSMessage.endOfName([0], from: 1))
        XCTAssertEqual(DNSMessage.endOfName([1, 0x61, 0xc0, 0], from: 0), 4)
        XCTAssertEqual(DNSMessage.endOfName([1, 0x61, 0], from: 0), 3)
    }
}
