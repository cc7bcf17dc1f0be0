@testable import FWResolve
import FWPolicy
import XCTest

/// CNAME following and the combination of A and AAAA, on answers built in memory.
final class LookupTests: XCTestCase {
    private func address(_ owner: String, _ text: String, ttl: UInt32 = 300) -> AnswerRecord {
        AnswerRecord(owner: owner, ttl: ttl, data: .address(IPAddress(text)!))
    }

    private func cname(_ owner: String, _ target: String, ttl: UInt32 = 300) -> AnswerRecord {
        AnswerRecord(owner: owner, ttl: ttl, data: .cname(target))
    }

    private func answer(_ records: [AnswerRecord], rcode: UInt8 = DNSResponse.noError) -> DNSResponse {
        DNSResponse(rcode: rcode, records: records)
    }

    func testChainInAnyOrderIsFollowedAndTTLIsTheMinimum() {
        var lookup = FamilyLookup(name: "www.example.test", type: .a)
        let outcome = lookup.absorb(answer([
            address("edge.cdn.test", "192.0.2.5", ttl: 300),
            cname("cdn.example.test", "edge.cdn.test", ttl: 20),
            cname("www.example.test", "cdn.example.test", ttl: 3600),
        ]))
        XCTAssertEqual(outcome, .addresses([IPAddress("192.0.2.5")!], ttl: 20,
                                           chain: ["cdn.example.test", "edge.cdn.test"]))
    }

    func testRecordsOfOtherOwnersAndTheOtherFamilyAreIgnored() {
        var lookup = FamilyLookup(name: "a.test", type: .a)
        let outcome = lookup.absorb(answer([address("b.test", "192.0.2.9"), address("a.test", "2001:db8::1")]))
        XCTAssertEqual(outcome, .nodata(chain: []))
    }

    func testChainEndingWithoutAddressesAsksForTheTarget() {
        var lookup = FamilyLookup(name: "a.test", type: .aaaa)
        XCTAssertNil(lookup.absorb(answer([cname("a.test", "b.test", ttl: 50)])))
        XCTAssertEqual(lookup.current, "b.test")
        let outcome = lookup.absorb(answer([address("b.test", "2001:db8::2", ttl: 70)]))
        XCTAssertEqual(outcome, .addresses([IPAddress("2001:db8::2")!], ttl: 50, chain: ["b.test"]))
    }

    func testNXDOMAINAtTheEndOfAChainKeepsTheChain() {
        var lookup = FamilyLookup(name: "a.test", type: .a)
        let outcome = lookup.absorb(answer([cname("a.test", "gone.test")], rcode: DNSResponse.nameError))
        XCTAssertEqual(outcome, .nxdomain(chain: ["gone.test"]))
    }

    func testCNAMELoopIsAnError() {
        var lookup = FamilyLookup(name: "a.test", type: .a)
        XCTAssertNil(lookup.absorb(answer([cname("a.test", "b.test")])))
        XCTAssertEqual(lookup.absorb(answer([cname("b.test", "a.test")])), .failure(.error, "CNAME loop at a.test"))
    }

    func testOverlongChainIsAnError() {
        var lookup = FamilyLookup(name: "c0.test", type: .a)
        let hops = (0...FamilyLookup.maxChain).map { cname("c\($0).test", "c\($0 + 1).test") }
        XCTAssertEqual(lookup.absorb(answer(hops)), .failure(.error, "CNAME chain longer than 8"))
    }

    // MARK: - Combining A and AAAA

    func testAddressesOfBothFamiliesAreMergedSortedAndUnique() {
        let r = NameResolution(
            name: "x.test",
            a: .addresses([IPAddress("192.0.2.9")!, IPAddress("192.0.2.1")!, IPAddress("192.0.2.9")!], ttl: 60, chain: []),
            aaaa: .addresses([IPAddress("2001:db8::1")!], ttl: 30, chain: []))
        XCTAssertEqual(r, NameResolution(name: "x.test", status: .ok,
                                         addresses: ["192.0.2.1", "192.0.2.9", "2001:db8::1"].map { IPAddress($0)! },
                                         ttl: 30))
    }

    func testOneFamilyFailingStillResolvesWithADetail() {
        let r = NameResolution(name: "x.test", a: .addresses([IPAddress("192.0.2.1")!], ttl: 60, chain: ["y.test"]),
                               aaaa: .failure(.timeout, "timeout after 2 attempts of 200 ms to 127.0.0.1:53"))
        XCTAssertEqual(r.status, .ok)
        XCTAssertEqual(r.chain, ["y.test"])
        XCTAssertEqual(r.detail, "AAAA: timeout after 2 attempts of 200 ms to 127.0.0.1:53")
    }

    func testFailureWinsOverAnEmptyAnswer() {
        let r = NameResolution(name: "x.test", a: .nodata(chain: []), aaaa: .failure(.servfail, "127.0.0.1:53: SERVFAIL"))
        XCTAssertEqual(r.status, .servfail)
        XCTAssertEqual(r.detail, "AAAA: 127.0.0.1:53: SERVFAIL")
    }

    func testBothNXDOMAINIsNXDOMAIN() {
        let r = NameResolution(name: "x.test", a: .nxdomain(chain: []), aaaa: .nxdomain(chain: []))
        XCTAssertEqual(r, NameResolution(name: "x.test", status: .nxdomain, detail: "NXDOMAIN"))
    }

    func testEmptyNOERRORIsNODATAAndShowsTheChain() {
        let r = NameResolution(name: "x.test", a: .nodata(chain: ["y.test"]), aaaa: .nxdomain(chain: ["y.test"]))
        XCTAssertEqual(r, NameResolution(name: "x.test", status: .nodata, chain: ["y.test"],
                                         detail: "no A or AAAA records at y.test"))
    }
}
