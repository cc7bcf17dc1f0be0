import FWPolicy
import FWResolve
import FWTestSupport
import Foundation
import XCTest

/// The resolver against a real dnsmasq on loopback; nothing leaves the machine.
final class ResolverTests: XCTestCase {
    private var server: DNSServer!

    override func setUpWithError() throws {
        try XCTSkipUnless(DNSServer.isAvailable, DNSServer.missingMessage)
        server = try DNSServer(
            hosts: [
                .init("host.test", ipv4: "192.0.2.1", ipv6: "2001:db8::1", ttl: 300),
                .init("v4only.test", ipv4: "192.0.2.2", ttl: 100),
                .init("v6only.test", ipv6: "2001:db8::6", ttl: 200),
                .init("shared1.test", ipv4: "198.51.100.7", ttl: 60),
                .init("shared2.test", ipv4: "198.51.100.7", ttl: 60),
            ],
            aliases: [
                .init("alias1.test", to: "alias2.test", ttl: 120),
                .init("alias2.test", to: "host.test", ttl: 40),
                .init("c6.test", to: "v6only.test", ttl: 90),
            ],
            hostsEntries: (1...100).map { .init("203.0.113.\($0)", "big.test") },
            localTTL: 30,
            extraArguments: ["--txt-record=txtonly.test,hello"])
    }

    override func tearDown() {
        server?.stop()
        server = nil
    }

    private func resolver(_ servers: [SocketEndpoint]? = nil, timeoutMs: Int = 1000, attempts: Int = 2,
                          parallelism: Int = 64) -> Resolver {
        Resolver(options: ResolverOptions(servers: servers ?? [server.endpoint], timeoutMs: timeoutMs,
                                          attempts: attempts, parallelism: parallelism))
    }

    private func resolveOne(_ name: String, servers: [SocketEndpoint]? = nil, timeoutMs: Int = 1000,
                            attempts: Int = 2) throws -> NameResolution {
        let resolution = resolver(servers, timeoutMs: timeoutMs, attempts: attempts).resolve([name])
        return try XCTUnwrap(resolution.result(for: name))
    }

    private func addresses(_ texts: String...) -> [IPAddress] { texts.map { IPAddress($0)! } }

    private func timed<T>(_ body: () throws -> T) rethrows -> (T, TimeInterval) {
        let start = Date()
        let value = try body()
        return (value, Date().timeIntervalSince(start))
    }

    func testAAndAAAA() throws {
        let r = try resolveOne("host.test")
        XCTAssertEqual(r, NameResolution(name: "host.test", status: .ok,
                                         addresses: addresses("192.0.2.1", "2001:db8::1"), ttl: 300))
    }

    func testCNAMEChainOfTwoHopsTakesTheMinimumTTL() throws {
        let r = try resolveOne("alias1.test")
        XCTAssertEqual(r.status, .ok)
        XCTAssertEqual(r.addresses, addresses("192.0.2.1", "2001:db8::1"))
        XCTAssertEqual(r.chain, ["alias2.test", "host.test"])
        XCTAssertEqual(r.ttl, 40)
    }

    func testCNAMEWhoseTargetLacksTheFamilyIsAskedAgainForTheTarget() throws {
        // dnsmasq answers "c6.test A" with the CNAME alone: the A lookup must ask
        // v6only.test itself and get NODATA, while AAAA comes with the chain.
        let r = try resolveOne("c6.test")
        XCTAssertEqual(r, NameResolution(name: "c6.test", status: .ok, addresses: addresses("2001:db8::6"),
                                         ttl: 90, chain: ["v6only.test"]))
    }

    func testNXDOMAIN() throws {
        let r = try resolveOne("missing.test")
        XCTAssertEqual(r.status, .nxdomain)
        XCTAssertEqual(r.addresses, [])
        XCTAssertNil(r.ttl)
        XCTAssertFalse(r.isResolved)
    }

    func testNameWithOnlyAGetsNODATAForAAAAAndStillResolves() throws {
        let r = try resolveOne("v4only.test")
        XCTAssertEqual(r, NameResolution(name: "v4only.test", status: .ok, addresses: addresses("192.0.2.2"),
                                         ttl: 100))
    }

    func testNameWithoutAddressRecordsIsNODATA() throws {
        let r = try resolveOne("txtonly.test")
        XCTAssertEqual(r.status, .nodata)
        XCTAssertEqual(r.addresses, [])
        XCTAssertNil(r.ttl)
    }

    func testTruncatedAnswerIsAskedAgainOverTCP() throws {
        let r = try resolveOne("big.test")
        XCTAssertEqual(r.status, .ok)
        XCTAssertEqual(r.addresses, (1...100).map { IPAddress("203.0.113.\($0)")! })
        XCTAssertEqual(r.ttl, 30)
    }

    func testServerThatNeverAnswersTimesOutWithinTheBound() throws {
        let silent = try SilentUDPServer()
        defer { silent.stop() }
        let (r, elapsed) = try timed { try resolveOne("host.test", servers: [silent.endpoint], timeoutMs: 200, attempts: 2) }
        XCTAssertEqual(r.status, .timeout)
        XCTAssertEqual(r.detail, "A: timeout after 2 attempts of 200 ms to \(silent.endpoint); "
                       + "AAAA: timeout after 2 attempts of 200 ms to \(silent.endpoint)")
        XCTAssertGreaterThanOrEqual(elapsed, 0.39)
        XCTAssertLessThan(elapsed, 1.5)
    }

    func testManyNamesAgainstASilentServerTakeNoLongerThanOne() throws {
        let silent = try SilentUDPServer()
        defer { silent.stop() }
        let names = (1...20).map { "n\($0).test" }
        let (resolution, elapsed) = timed {
            resolver([silent.endpoint], timeoutMs: 200, attempts: 2).resolve(names)
        }
        XCTAssertEqual(resolution.failures.count, 20)
        XCTAssertLessThan(elapsed, 1.5)
    }

    func testSilentFirstServerFallsThroughToTheSecond() throws {
        let silent = try SilentUDPServer()
        defer { silent.stop() }
        let (r, elapsed) = try timed { try resolveOne("host.test", servers: [silent.endpoint, server.endpoint], timeoutMs: 300) }
        XCTAssertEqual(r.status, .ok)
        XCTAssertEqual(r.addresses, addresses("192.0.2.1", "2001:db8::1"))
        XCTAssertGreaterThanOrEqual(elapsed, 0.29)
        XCTAssertLessThan(elapsed, 1.0)
    }

    func testClosedPortFirstFallsThroughAtOnce() throws {
        let closed = SocketEndpoint(address: IPAddress("127.0.0.1")!, port: LoopbackPort.unused())
        let (r, elapsed) = try timed { try resolveOne("host.test", servers: [closed, server.endpoint], timeoutMs: 2000) }
        XCTAssertEqual(r.status, .ok)
        XCTAssertLessThan(elapsed, 1.0, "an ICMP port unreachable must not wait for the timeout")
    }

    func testOnlyServerClosedIsAnErrorNamingIt() throws {
        let closed = SocketEndpoint(address: IPAddress("127.0.0.1")!, port: LoopbackPort.unused())
        let r = try resolveOne("host.test", servers: [closed])
        XCTAssertEqual(r.status, .error)
        XCTAssertEqual(r.detail, "A: \(closed): port unreachable (connection refused); "
                       + "AAAA: \(closed): port unreachable (connection refused)")
    }

    func testRefusingServerIsReportedAndSkipped() throws {
        let other = try DNSServer(hosts: [.init("x.other", ipv4: "192.0.2.99")], domain: "other")
        defer { other.stop() }
        let refused = try resolveOne("host.test", servers: [other.endpoint])
        XCTAssertEqual(refused.status, .refused)
        XCTAssertEqual(refused.detail, "A: \(other.endpoint): REFUSED; AAAA: \(other.endpoint): REFUSED")
        let fallen = try resolveOne("host.test", servers: [other.endpoint, server.endpoint])
        XCTAssertEqual(fallen.status, .ok)
    }

    func testTwoNamesSharingAnAddressBothResolve() {
        let resolution = resolver().resolve(["shared1.test", "shared2.test"])
        XCTAssertEqual(resolution.failures, [])
        XCTAssertEqual(resolution.result(for: "shared1.test")?.addresses, addresses("198.51.100.7"))
        XCTAssertEqual(resolution.result(for: "shared2.test")?.addresses, addresses("198.51.100.7"))
    }

    func testFailingNameAmongGoodOnesLeavesTheGoodOnesResolved() {
        let resolution = resolver().resolve(["host.test", "optional-missing.test", "alias1.test", "v4only.test"])
        XCTAssertEqual(resolution.results.map(\.name),
                       ["alias1.test", "host.test", "optional-missing.test", "v4only.test"])
        XCTAssertEqual(resolution.failures.map(\.name), ["optional-missing.test"])
        XCTAssertEqual(resolution.failures.first?.status, .nxdomain)
    }

    func testServerOnANon53PortIsUsed() throws {
        XCTAssertNotEqual(server.endpoint.port, 53)
        let endpoint = try SocketEndpoint.parse("127.0.0.1:\(server.port)", defaultPort: 53).get()
        XCTAssertEqual(try resolveOne("v4only.test", servers: [endpoint]).addresses, addresses("192.0.2.2"))
    }

    func testNamesAreNormalizedAndResolvedOnce() {
        let resolution = resolver().resolve(["Host.TEST.", "host.test", "HOST.test"])
        XCTAssertEqual(resolution.results.map(\.name), ["host.test"])
        XCTAssertEqual(resolution.result(for: "HOST.test.")?.status, .ok)
    }

    func testInvalidNameIsAnError() throws {
        let r = try resolveOne(String(repeating: "x", count: 64) + ".test")
        XCTAssertEqual(r.status, .error)
        XCTAssertEqual(r.detail?.contains("not a valid DNS name"), true)
    }

    func testNoServersIsAnError() throws {
        let r = try resolveOne("host.test", servers: [])
        XCTAssertEqual(r.status, .error)
        XCTAssertEqual(r.detail, "A: no DNS servers configured; AAAA: no DNS servers configured")
    }

    func testEmptyInputGivesEmptyResolution() {
        XCTAssertEqual(resolver().resolve([]).results, [])
    }
}

/// Many names at once against one dnsmasq serving a bulk hosts file.
final class ParallelResolverTests: XCTestCase {
    private static let count = 500

    private static func name(_ i: Int) -> String { String(format: "p%04d.bulk.test", i) }
    private static func ipv4(_ i: Int) -> String { i <= 250 ? "198.51.100.\(i)" : "203.0.113.\(i - 250)" }
    private static func ipv6(_ i: Int) -> String { "2001:db8::" + String(i, radix: 16) }

    func testFiveHundredNamesInParallelAreAllCorrect() throws {
        try XCTSkipUnless(DNSServer.isAvailable, DNSServer.missingMessage)
        let entries = (1...Self.count).flatMap { i in [DNSServer.HostsEntry(Self.ipv4(i), Self.name(i)),
                                                       DNSServer.HostsEntry(Self.ipv6(i), Self.name(i))] }
        let server = try DNSServer(hostsEntries: entries, localTTL: 600)
        defer { server.stop() }

        let calls = ProgressLog()
        let names = (1...Self.count).map(Self.name)
        let resolution = Resolver(options: ResolverOptions(servers: [server.endpoint], timeoutMs: 2000, attempts: 2))
            .resolve(names.shuffled()) { done, total in calls.append(done, total) }

        XCTAssertEqual(resolution.failures, [])
        XCTAssertEqual(resolution.results.map(\.name), names)
        for i in 1...Self.count {
            let r = resolution.result(for: Self.name(i))
            XCTAssertEqual(r?.addresses, [IPAddress(Self.ipv4(i))!, IPAddress(Self.ipv6(i))!], Self.name(i))
            XCTAssertEqual(r?.ttl, 600)
        }
        XCTAssertEqual(calls.entries.map(\.0), Array(1...Self.count))
        XCTAssertTrue(calls.entries.allSatisfy { $0.1 == Self.count })
    }

    func testParallelismOfOneStillResolvesEveryName() throws {
        try XCTSkipUnless(DNSServer.isAvailable, DNSServer.missingMessage)
        let server = try DNSServer(hostsEntries: (1...20).map { .init(Self.ipv4($0), Self.name($0)) })
        defer { server.stop() }
        let resolution = Resolver(options: ResolverOptions(servers: [server.endpoint], parallelism: 1))
            .resolve((1...20).map(Self.name))
        XCTAssertEqual(resolution.results.count, 20)
        XCTAssertEqual(resolution.failures, [])
    }
}

/// Collects progress calls, which arrive from worker threads.
private final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var calls: [(Int, Int)] = []

    func append(_ done: Int, _ total: Int) {
        lock.lock()
        calls.append((done, total))
        lock.unlock()
    }

    var entries: [(Int, Int)] {
        lock.lock()
        defer { lock.unlock() }
        return calls
    }
}
