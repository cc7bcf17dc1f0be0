@testable import FWResolve
import FWPolicy
import FWTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// DNSUpstream against a real dnsmasq on loopback; nothing leaves the machine.
final class DNSUpstreamTests: XCTestCase {
    private var server: DNSServer!

    override func setUpWithError() throws {
        try XCTSkipUnless(DNSServer.isAvailable, DNSServer.missingMessage)
        server = try DNSServer(
            hosts: [.init("host.test", ipv4: "192.0.2.1", ipv6: "2001:db8::1", ttl: 300)],
            aliases: [.init("alias.test", to: "host.test", ttl: 40)],
            hostsEntries: (1...100).map { .init("203.0.113.\($0)", "big.test") },
            localTTL: 30)
    }

    override func tearDown() {
        server?.stop()
        server = nil
    }

    private func query(_ name: String, _ type: RecordType = .a) throws -> DNSQueryMessage {
        try DNSBytes.parsed(try XCTUnwrap(DNSQuery(name: name, type: type)).wire)
    }

    private func upstream(_ servers: [SocketEndpoint], timeoutMs: Int = 1000, attempts: Int = 2,
                          mark: UInt32? = nil) -> DNSUpstream {
        DNSUpstream(servers: servers, timeoutMs: timeoutMs, attempts: attempts, mark: mark)
    }

    private func timed<T>(_ body: () throws -> T) rethrows -> (T, TimeInterval) {
        let start = Date()
        let value = try body()
        return (value, Date().timeIntervalSince(start))
    }

    private var closedPort: SocketEndpoint { SocketEndpoint(address: IPAddress("127.0.0.1")!, port: LoopbackPort.unused()) }

    func testAllowedNameOverUDPAndTCPGivesItsAddresses() throws {
        for tcp in [false, true] {
            let q = try query("host.test")
            let answer = try XCTUnwrap(upstream([server.endpoint]).exchange(q, tcp: tcp, capTTL: 60), "tcp: \(tcp)")
            XCTAssertEqual(answer.rcode, 0)
            XCTAssertEqual(answer.addresses, [IPAddress("192.0.2.1")!])
            XCTAssertEqual(answer.ttl, 60, "300 capped")
            XCTAssertEqual(Array(answer.wire.prefix(2)), Array(q.wire.prefix(2)), "the client's id")
            XCTAssertEqual(try DNSBytes.ttls(answer.wire).filter { $0.0 != 41 }.map(\.1), [60])
        }
    }

    func testCNAMEChainAndAAAA() throws {
        let answer = try XCTUnwrap(upstream([server.endpoint]).exchange(try query("alias.test", .aaaa), tcp: false,
                                                                        capTTL: 3600))
        XCTAssertEqual(answer.addresses, [IPAddress("2001:db8::1")!])
        XCTAssertEqual(answer.ttl, 40)
    }

    func testNXDOMAINIsAnAnswer() throws {
        let answer = try XCTUnwrap(upstream([server.endpoint]).exchange(try query("missing.test"), tcp: false, capTTL: 60))
        XCTAssertEqual(answer.rcode, DNSMessage.nameError)
        XCTAssertEqual(answer.addresses, [])
    }

    func testTruncatedUDPAnswerIsRelayedAndTCPGivesEverything() throws {
        let q = try query("big.test")
        let udp = try XCTUnwrap(upstream([server.endpoint]).exchange(q, tcp: false, capTTL: 60))
        XCTAssertEqual(udp.wire[2] & 0x02, 0x02, "TC")
        XCTAssertEqual(udp.addresses, [])
        let tcp = try XCTUnwrap(upstream([server.endpoint]).exchange(q, tcp: true, capTTL: 60))
        XCTAssertEqual(tcp.addresses, (1...100).map { IPAddress("203.0.113.\($0)")! })
        XCTAssertEqual(tcp.ttl, 30)
    }

    func testDeadServerThenALiveOneStillAnswersAtOnce() throws {
        for tcp in [false, true] {
            let (answer, elapsed) = try timed {
                upstream([closedPort, server.endpoint], timeoutMs: 2000).exchange(try query("host.test"), tcp: tcp, capTTL: 60)
            }
            XCTAssertEqual(answer?.addresses, [IPAddress("192.0.2.1")!], "tcp: \(tcp)")
            XCTAssertLessThan(elapsed, 1.0, "a closed port must not wait for the timeout")
        }
    }

    func testSilentServerThenALiveOneAnswersAfterOneTimeout() throws {
        let silent = try SilentUDPServer()
        defer { silent.stop() }
        let (answer, elapsed) = try timed {
            upstream([silent.endpoint, server.endpoint], timeoutMs: 300).exchange(try query("host.test"), tcp: false, capTTL: 60)
        }
        XCTAssertEqual(answer?.addresses, [IPAddress("192.0.2.1")!])
        XCTAssertGreaterThanOrEqual(elapsed, 0.29)
        XCTAssertLessThan(elapsed, 1.0)
    }

    func testAllDeadIsNilWithinTheBound() throws {
        let q = try query("host.test")
        for tcp in [false, true] {
            let (closed, fast) = timed { upstream([closedPort, closedPort], timeoutMs: 2000).exchange(q, tcp: tcp, capTTL: 60) }
            XCTAssertNil(closed)
            XCTAssertLessThan(fast, 1.0)
        }
        let silent = try SilentUDPServer()
        defer { silent.stop() }
        let (answer, elapsed) = timed { upstream([silent.endpoint], timeoutMs: 200, attempts: 2).exchange(q, tcp: false, capTTL: 60) }
        XCTAssertNil(answer)
        XCTAssertGreaterThanOrEqual(elapsed, 0.39)
        XCTAssertLessThan(elapsed, 1.5)
        XCTAssertNil(upstream([]).exchange(q, tcp: false, capTTL: 60))
    }

    func testREFUSEDGoesOnToTheNextServerAndIsReturnedWhenAllRefuse() throws {
        let other = try DNSServer(hosts: [.init("x.other", ipv4: "192.0.2.99")], domain: "other")
        defer { other.stop() }
        let q = try query("host.test")
        let fallen = try XCTUnwrap(upstream([other.endpoint, server.endpoint]).exchange(q, tcp: false, capTTL: 60))
        XCTAssertEqual(fallen.rcode, 0)
        XCTAssertEqual(fallen.addresses, [IPAddress("192.0.2.1")!])
        let refused = try XCTUnwrap(upstream([other.endpoint, closedPort]).exchange(q, tcp: false, capTTL: 60))
        XCTAssertEqual(refused.rcode, DNSMessage.refused)
        XCTAssertEqual(refused.addresses, [])
    }

    func testConcurrentExchangesEachGetTheirOwnAnswer() throws {
        let up = upstream([server.endpoint])
        let names = ["host.test", "alias.test", "missing.test", "big.test"]
        let queries = try (0..<40).map { try query(names[$0 % names.count]) }
        let results = Results(count: queries.count)
        DispatchQueue.concurrentPerform(iterations: queries.count) { i in
            results.set(i, up.exchange(queries[i], tcp: i % 3 == 0, capTTL: 60))
        }
        for (i, q) in queries.enumerated() {
            let answer = try XCTUnwrap(results.get(i), q.name)
            XCTAssertEqual(Array(answer.wire.prefix(2)), Array(q.wire.prefix(2)))
            XCTAssertEqual(answer.rcode, q.name == "missing.test" ? 3 : 0, q.name)
        }
    }
}

private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [DNSForwardedAnswer?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: DNSForwardedAnswer?) { lock.lock(); slots[i] = value; lock.unlock() }
    func get(_ i: Int) -> DNSForwardedAnswer? { lock.lock(); defer { lock.unlock() }; return slots[i] }
}

/// SO_MARK on the sockets of DNSUpstream and Transport. Needs root (CAP_NET_ADMIN); the
/// receiving side reads the mark of each datagram with SO_RCVMARK (Linux 5.19+).
final class SocketMarkTests: XCTestCase {
    private static let mark: UInt32 = 0x00f0_dd15

    override func setUpWithError() throws {
        try XCTSkipUnless(geteuid() == 0, "setting SO_MARK needs CAP_NET_ADMIN")
    }

    func testOpenSocketAppliesTheMark() throws {
        let address = SocketAddress(SocketEndpoint(address: IPAddress("127.0.0.1")!, port: 53))
        for type in [Int32(SOCK_DGRAM.rawValue), Int32(SOCK_STREAM.rawValue)] {
            let fd = try openSocket(for: address, type: type, mark: Self.mark, label: "socket").get()
            defer { close(fd) }
            XCTAssertEqual(appliedMark(of: fd), Self.mark)
            let plain = try openSocket(for: address, type: type, mark: nil, label: "socket").get()
            defer { close(plain) }
            XCTAssertEqual(appliedMark(of: plain), 0)
        }
    }

    func testUpstreamDatagramsCarryTheMark() throws {
        let capture = try MarkCapture()
        let q = try DNSBytes.parsed(try XCTUnwrap(DNSQuery(name: "host.test", type: .a)).wire)
        let up = DNSUpstream(servers: [capture.endpoint], timeoutMs: 300, attempts: 1, mark: Self.mark)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { _ = up.exchange(q, tcp: false, capTTL: 60); done.signal() }
        let received = capture.receive(count: 1)
        done.wait()
        XCTAssertEqual(received.map(\.payload), [q.wire])
        XCTAssertEqual(received.map(\.mark), [Self.mark])
    }

    func testResolverDatagramsCarryTheMark() throws {
        let capture = try MarkCapture()
        let options = ResolverOptions(servers: [capture.endpoint], timeoutMs: 300, attempts: 1, mark: Self.mark)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { _ = Resolver(options: options).resolve(["host.test"]); done.signal() }
        let received = capture.receive(count: 2)
        done.wait()
        XCTAssertEqual(received.map(\.mark), [Self.mark, Self.mark], "the A and AAAA queries")
    }
}

/// A UDP socket on 127.0.0.1 that never answers and reports each datagram's SO_MARK.
private final class MarkCapture {
    let fd: Int32
    let endpoint: SocketEndpoint

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var on: Int32 = 1
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let bound = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard fd >= 0, bound == 0, setsockopt(fd, SOL_SOCKET, 75 /* SO_RCVMARK */, &on, 4) == 0 else {
            let why = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw XCTSkip("SO_RCVMARK unavailable: \(why)")
        }
        self.fd = fd
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
        }
        endpoint = SocketEndpoint(address: IPAddress("127.0.0.1")!, port: UInt16(bigEndian: sin.sin_port))
    }

    deinit { close(fd) }

    /// Up to `count` datagrams, waiting at most 2 s for each.
    func receive(count: Int) -> [(payload: [UInt8], mark: UInt32?)] {
        var out: [(payload: [UInt8], mark: UInt32?)] = []
        var wait = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        for _ in 0..<count {
            var payload = [UInt8](repeating: 0, count: 2048)
            var control = [UInt8](repeating: 0, count: 256)
            let (n, controlLength) = payload.withUnsafeMutableBytes { data in
                control.withUnsafeMutableBytes { ctl -> (Int, Int) in
                    var iov = iovec(iov_base: data.baseAddress, iov_len: data.count)
                    return withUnsafeMutablePointer(to: &iov) { iovp in
                        var msg = msghdr()
                        msg.msg_iov = iovp
                        msg.msg_iovlen = 1
                        msg.msg_control = ctl.baseAddress
                        msg.msg_controllen = ctl.count
                        let n = recvmsg(fd, &msg, 0)
                        return (n, Int(msg.msg_controllen))
                    }
                }
            }
            guard n >= 0 else { break }
            out.append((Array(payload[0..<n]), Self.mark(in: Array(control[0..<controlLength]))))
        }
        return out
    }

    /// The SOL_SOCKET/SO_MARK control message's value, read by hand (the CMSG macros do
    /// not come through to Swift).
    private static func mark(in control: [UInt8]) -> UInt32? {
        let headerSize = MemoryLayout<cmsghdr>.size
        var offset = 0
        while offset + headerSize <= control.count {
            let header = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: cmsghdr.self) }
            let length = Int(header.cmsg_len)
            guard length >= headerSize, offset + length <= control.count else { return nil }
            if header.cmsg_level == SOL_SOCKET && header.cmsg_type == socketMarkOption && length >= headerSize + 4 {
                return control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + headerSize, as: UInt32.self) }
            }
            offset += (length + 7) & ~7
        }
        return nil
    }
}
