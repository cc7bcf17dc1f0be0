@testable import FWResolve
import FWPolicy
import XCTest

/// What Fuzz/FuzzDNS found (scripts/fuzz), as the bytes that did it.
final class FuzzRegressionTests: XCTestCase {
    /// A reply to "www.example.com AAAA" whose first AAAA record has RDLENGTH 17. ldns reads
    /// 16 bytes of address and the next record right after them: a second AAAA at TTL 4000.
    /// Going by RDLENGTH (as the TTL cap did, and as a client does), the next record starts
    /// a byte later and is another one, whose "TTL" is four bytes of ldns's second address.
    /// So the filter put an address into the sets whose bytes it then overwrote with the
    /// capped TTL, and left the real TTL uncapped. Such a reply is now refused.
    func testRecordWhoseDataOutrunsItsType() throws {
        let query = try DNSBytes.parsed(DNSBytes.query("www.example.com", id: 0xbeef, type: 28))
        let reply: [UInt8] = [
            0xbe, 0xef, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
            0x03, 0x77, 0x77, 0x77, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00,
            0x00, 0x1c, 0x00, 0x01,
            0xc0, 0x0c, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x00, 0x64, 0x00, 0x11,
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xc0,
            0x0c, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x0f, 0xa0, 0x00, 0x10, 0x20, 0x01, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, 0x65, 0x78, 0x61,
        ]
        XCTAssertNil(DNSMessage.readAnswer(reply, to: query, capTTL: 300))

        // Its first record alone, with RDLENGTH 16, is read as before.
        var fixed = Array(reply[0..<61])
        fixed[7] = 1     // ANCOUNT
        fixed[44] = 0x10 // RDLENGTH
        let answer = try XCTUnwrap(DNSMessage.readAnswer(fixed, to: query, capTTL: 300))
        XCTAssertEqual(answer.addresses, [IPAddress("2001:db8::1")!])
        XCTAssertEqual(answer.ttl, 100)
        XCTAssertEqual(answer.wire.count, fixed.count)
    }

    /// A reply to "example.com A" whose first record's owner is a compression pointer into
    /// the last byte of its own TTL (0x00: the root). Capping that TTL at 300 writes 0x2c
    /// there, and the owner becomes a 44-byte label: the client would read other records than
    /// the ones the filter judged. Such a reply is now refused.
    func testNameCompressedIntoATTL() throws {
        let query = try DNSBytes.parsed(DNSBytes.query("example.com", id: 0x1234, type: 1))
        let reply: [UInt8] = [
            0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
            0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
            // owner -> offset 38, A, IN, TTL 3584 (its last byte is offset 38), 0.1.0.1
            0xc0, 0x26, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x04, 0x00, 0x01, 0x00, 0x01,
            // example.com CNAME, TTL 0x002cc00c, RDLENGTH 1: the root
            0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x2c, 0xc0, 0x0c, 0x00, 0x01,
        ] + [UInt8](repeating: 0, count: 95)
        XCTAssertNil(DNSMessage.readAnswer(reply, to: query, capTTL: 300))
        // Under the cap nothing is rewritten, and the same reply is read as it stands.
        XCTAssertNotNil(DNSMessage.readAnswer(reply, to: query, capTTL: 0x0100_0000))

        // The owner pointing at the question's name instead: capped and read as before.
        var plain = reply
        plain[30] = 0x0c
        let answer = try XCTUnwrap(DNSMessage.readAnswer(plain, to: query, capTTL: 300))
        XCTAssertEqual(answer.addresses, [IPAddress("0.1.0.1")!])
        XCTAssertEqual(answer.ttl, 300)
    }

    /// Two TSIG records in the additional section: ldns_wire2pkt keeps the first as the
    /// packet's signature and overwrites it with the second without freeing it, so every
    /// such message leaked (found by FuzzDNS's leak check; a sandbox client could send them
    /// at will). fwctl signs nothing, so a message with a TSIG record is refused before
    /// ldns builds a packet: a query gets FORMERR, a reply is not read.
    func testTSIGRecordsAreRefusedBeforeLdnsKeepsThem() throws {
        // Root owner, type TSIG (250), class ANY, TTL 0, RDLENGTH 0.
        let tsig: [UInt8] = [0x00, 0x00, 0xfa, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
        var query = DNSBytes.query("example.com", id: 0x4242)
        query[11] = 2   // ARCOUNT
        query += tsig + tsig
        XCTAssertTrue(LDNSPacket.carriesTSIG(query))
        guard case .reply(let formerr) = DNSMessage.parseQuery(query) else {
            return XCTFail("a query with TSIG records was accepted: \(DNSMessage.parseQuery(query))")
        }
        XCTAssertEqual(formerr[3] & 0x0f, 1, "FORMERR")
        XCTAssertEqual(Array(formerr[0..<2]), [0x42, 0x42])

        let plain = try DNSBytes.parsed(DNSBytes.query("example.com", id: 0x4242))
        var reply = DNSBytes.query("example.com", id: 0x4242, flags: 0x8180)
        reply[11] = 1
        reply += tsig
        XCTAssertNil(DNSMessage.readAnswer(reply, to: plain, capTTL: 300))
        // Without it, the same reply is read.
        XCTAssertNotNil(DNSMessage.readAnswer(Array(reply.dropLast(tsig.count)).enumerated().map { $0.offset == 11 ? 0 : $0.element },
                                              to: plain, capTTL: 300))
        XCTAssertFalse(LDNSPacket.carriesTSIG(DNSBytes.query("example.com")))
    }
}
