@testable import FWResolve
import XCTest

/// Queries built by ldns, and the checks an answer must pass before it is used.
final class WireTests: XCTestCase {
    private func query(_ name: String = "host.test", _ type: RecordType = .a, id: UInt16 = 0x1234) throws -> DNSQuery {
        try XCTUnwrap(DNSQuery(name: name, type: type, id: id))
    }

    /// The query turned into an answer with no records: QR set, the given rcode.
    private func reply(to query: DNSQuery, rcode: UInt8 = 0, truncated: Bool = false) -> [UInt8] {
        var bytes = query.wire
        bytes[2] |= 0x80 | (truncated ? 0x02 : 0)
        bytes[3] = (bytes[3] & 0xf0) | rcode
        return bytes
    }

    func testQueryHasIdRecursionDesiredOneQuestionAndEDNS() throws {
        let q = try query()
        XCTAssertEqual(Array(q.wire[0..<2]), [0x12, 0x34])
        XCTAssertEqual(q.wire[2], 0x01, "RD only")
        XCTAssertEqual(Array(q.wire[4..<6]), [0, 1], "one question")
        XCTAssertEqual(Array(q.wire[10..<12]), [0, 1], "one additional record: OPT")
        XCTAssertTrue(q.wire.count > 12 + "host.test".count + 2 + 4)
    }

    func testQueryIdsAreRandom() {
        let ids = Set((0..<20).compactMap { _ in DNSQuery(name: "host.test", type: .a)?.id })
        XCTAssertGreaterThan(ids.count, 1)
    }

    func testInvalidNamesAreRefused() {
        XCTAssertNil(DNSQuery(name: "", type: .a))
        XCTAssertNil(DNSQuery(name: String(repeating: "x", count: 64) + ".test", type: .a))
        XCTAssertNil(DNSQuery(name: "a..test", type: .a))
    }

    func testMatchingAnswerIsParsed() throws {
        let q = try query()
        XCTAssertEqual(q.match(reply(to: q, rcode: 3)), .response(DNSResponse(rcode: 3, records: [])))
    }

    func testAnswerWithAnotherIdIsNotOurs() throws {
        let q = try query()
        XCTAssertEqual(try query(id: 0x4321).match(reply(to: q)), .notOurs)
    }

    func testAnswerToAnotherQuestionIsNotOurs() throws {
        let other = try query("other.test")
        XCTAssertEqual(try query().match(reply(to: other)), .notOurs)
        let aaaa = try query("host.test", .aaaa)
        XCTAssertEqual(try query().match(reply(to: aaaa)), .notOurs)
    }

    func testQuestionIsComparedWithoutCase() throws {
        let upper = try query("HOST.Test")
        XCTAssertEqual(try query().match(reply(to: upper)), .response(DNSResponse(rcode: 0, records: [])))
    }

    func testAQueryIsNotAnAnswer() throws {
        let q = try query()
        XCTAssertEqual(q.match(q.wire), .notOurs)
    }

    func testTruncatedAnswerIsRecognizedFromItsHeader() throws {
        let q = try query()
        XCTAssertEqual(q.match(Array(reply(to: q, truncated: true)[0..<12])), .truncated)
    }

    func testGarbageWithOurIdIsMalformed() throws {
        let q = try query()
        XCTAssertEqual(q.match(Array(reply(to: q)[0..<14])), .malformed)
    }
}
