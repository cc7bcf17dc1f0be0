import XCTest
import FWTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import FWProxy

final class ClientHelloTests: XCTestCase {
    // MARK: Real ClientHellos, captured from openssl s_client

    /// Runs `openssl s_client` against a loopback listener that only records the first
    /// bytes, and returns them once they hold a whole ClientHello (or the client gives up).
    private func capture(_ extra: [String]) throws -> [UInt8] {
        guard let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first(where: FileManager.default.isExecutableFile) else {
            throw XCTSkip("openssl is not installed")
        }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(listener, 0)
        defer { close(listener) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(bound, 0)
        XCTAssertEqual(listen(listener, 1), 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) }
        }
        let port = UInt16(bigEndian: addr.sin_port)

        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: openssl)
        proc.arguments = ["s_client", "-connect", "127.0.0.1:\(port)"] + extra
        let stdin = Pipe() // kept open, so s_client waits for the server instead of quitting
        proc.standardInput = stdin
        proc.standardOutput = FileHandle.nullDevice
        proc.standardError = FileHandle.nullDevice
        try proc.run()
        defer {
            if proc.isRunning { proc.terminate() }
            try? stdin.fileHandleForWriting.close()
            proc.waitUntilExit()
        }

        var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 10_000) == 1 else { XCTFail("openssl did not connect"); return [] }
        let conn = accept(listener, nil, nil)
        XCTAssertGreaterThanOrEqual(conn, 0)
        defer { close(conn) }
        var received: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(10)
        while ClientHello.parse(received) == .needMoreData, Date() < deadline {
            var cfd = pollfd(fd: conn, events: Int16(POLLIN), revents: 0)
            guard poll(&cfd, 1, 1000) == 1 else { continue }
            let n = buf.withUnsafeMutableBytes { recv(conn, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += buf[0..<n]
        }
        return received
    }

    func testRealClientHelloTLS13() throws {
        let hello = try capture(["-servername", "api.example.test"])
        XCTAssertEqual(ClientHello.parse(hello), .sni("api.example.test"))
        XCTAssertEqual(ClientHello.parse(hello[...]), .sni("api.example.test"))
        // Every proper prefix is a valid beginning: more is needed, never an error.
        for n in 0..<hello.count {
            XCTAssertEqual(ClientHello.parse(Array(hello.prefix(n))), .needMoreData, "prefix \(n)")
        }
        // Bytes after the hello (nothing a client sends before a reply) change nothing.
        XCTAssertEqual(ClientHello.parse(hello + [0x17, 0x03, 0x03]), .sni("api.example.test"))
        // A ClientHello fragmented over several records is reassembled.
        XCTAssertEqual(ClientHello.parse(Self.fragment(hello, at: [7, 100])), .sni("api.example.test"))
        fuzz(hello, iterations: 4000, seed: 0xF00D)
    }

    func testRealClientHelloTLS12() throws {
        let hello = try capture(["-servername", "Upper.Example.Test", "-tls1_2"])
        XCTAssertEqual(ClientHello.parse(hello), .sni("Upper.Example.Test")) // as sent; callers normalize
    }

    func testRealClientHelloWithoutSNI() throws {
        let hello = try capture(["-noservername"])
        XCTAssertEqual(ClientHello.parse(hello), .noSNI)
    }

    // MARK: Hand-made

    /// A minimal ClientHello in one record; `extensions` nil leaves out the block.
    static func hello(sni: String?, extensions extra: [[UInt8]] = [], omitExtensions: Bool = false,
                      handshakeType: UInt8 = 1) -> [UInt8] {
        var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0xAB, count: 32)
        body += [0x00]                      // session id
        body += [0x00, 0x02, 0x13, 0x01]    // one cipher suite
        body += [0x01, 0x00]                // null compression
        if !omitExtensions {
            var exts: [UInt8] = []
            if let sni = sni { exts += sniExtension([sni]) }
            for e in extra { exts += e }
            body += u16(exts.count) + exts
        }
        let handshake = [handshakeType] + u24(body.count) + body
        return [0x16, 0x03, 0x01] + u16(handshake.count) + handshake
    }

    static func sniExtension(_ names: [String], type: UInt8 = 0) -> [UInt8] {
        var list: [UInt8] = []
        for n in names { list += [type] + u16(n.utf8.count) + Array(n.utf8) }
        let data = u16(list.count) + list
        return [0x00, 0x00] + u16(data.count) + data
    }

    static func u16(_ n: Int) -> [UInt8] { [UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] }
    static func u24(_ n: Int) -> [UInt8] { [UInt8(n >> 16 & 0xff)] + u16(n) }

    /// Re-cuts a single-record hello into several records at the given handshake offsets.
    static func fragment(_ record: [UInt8], at cuts: [Int]) -> [UInt8] {
        let handshake = Array(record[5...])
        var out: [UInt8] = []
        var start = 0
        for end in cuts + [handshake.count] {
            let piece = Array(handshake[start..<end])
            out += [0x16, 0x03, 0x01] + u16(piece.count) + piece
            start = end
        }
        return out
    }

    func testHandMadeSNI() {
        XCTAssertEqual(ClientHello.parse(Self.hello(sni: "api.example.test")), .sni("api.example.test"))
        let alpn: [UInt8] = [0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, 0x68, 0x32]
        XCTAssertEqual(ClientHello.parse(Self.hello(sni: "a.test", extensions: [alpn])), .sni("a.test"))
    }

    func testNoSNI() {
        XCTAssertEqual(ClientHello.parse(Self.hello(sni: nil)), .noSNI)
        XCTAssertEqual(ClientHello.parse(Self.hello(sni: nil, omitExtensions: true)), .noSNI)
    }

    func testTruncatedNeedsMoreData() {
        let h = Self.hello(sni: "api.example.test")
        XCTAssertEqual(ClientHello.parse([]), .needMoreData)
        XCTAssertEqual(ClientHello.parse([0x16]), .needMoreData)
        XCTAssertEqual(ClientHello.parse(Array(h.prefix(5))), .needMoreData)
        XCTAssertEqual(ClientHello.parse(Array(h.prefix(h.count - 1))), .needMoreData)
        // The second record of a fragmented hello not yet there.
        let f = Self.fragment(h, at: [20])
        XCTAssertEqual(ClientHello.parse(Array(f.prefix(5 + 20))), .needMoreData)
        XCTAssertEqual(ClientHello.parse(Array(f.prefix(5 + 20 + 3))), .needMoreData)
        XCTAssertEqual(ClientHello.parse(f), .sni("api.example.test"))
    }

    func testNotTLS() {
        XCTAssertEqual(ClientHello.parse(Array("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n".utf8)), .notTLS)
        XCTAssertEqual(ClientHello.parse(Array("CONNECT a.test:443 HTTP/1.1\r\n".utf8)), .notTLS)
        XCTAssertEqual(ClientHello.parse([0x80, 0x2e, 0x01, 0x03, 0x01]), .notTLS) // SSLv2-style hello
        XCTAssertEqual(ClientHello.parse([0x16, 0x02]), .notTLS)
        XCTAssertEqual(ClientHello.parse([0x17, 0x03, 0x03, 0x00, 0x10]), .notTLS) // application data
    }

    func testMalformed() {
        // A record longer than TLS allows.
        XCTAssertEqual(ClientHello.parse([0x16, 0x03, 0x01, 0x40, 0x01]), .malformed)
        XCTAssertEqual(ClientHello.parse([0x16, 0x03, 0x01, 0x00, 0x00]), .malformed)
        // Not a ClientHello (a ServerHello).
        XCTAssertEqual(ClientHello.parse(Self.hello(sni: "a.test", handshakeType: 2)), .malformed)
        // Two server_name extensions, or two host names in one: ambiguous.
        XCTAssertEqual(ClientHello.parse(Self.hello(sni: "a.test", extensions: [Self.sniExtension(["b.test"])])), .malformed)
        XCTAssertEqual(ClientHello.parse(Self.hello(sni: nil, extensions: [Self.sniExtension(["a.test", "b.test"])])), .malformed)
        // Names with bytes no host name has.
        XCTAssertEqual(ClientHello.parse(Self.hello(sni: "a.test\u{0}.evil")), .malformed)
        XCTAssertEqual(ClientHello.parse(Self.hello(sni: "a b")), .malformed)
        XCTAssertEqual(ClientHello.parse(Self.hello(sni: "")), .malformed)
        // A server_name extension without a host_name entry (no other name type exists).
        XCTAssertEqual(ClientHello.parse(Self.hello(sni: nil, extensions: [Self.sniExtension(["x"], type: 7)])), .malformed)
        // Something other than a handshake record after the first.
        var f = Self.fragment(Self.hello(sni: "a.test"), at: [10])
        f[5 + 10] = 0x17
        XCTAssertEqual(ClientHello.parse(f), .malformed)
        // A hello over more records than allowed.
        let h = Self.hello(sni: "api.example.test")
        XCTAssertEqual(ClientHello.parse(Self.fragment(h, at: [1, 2, 3, 4])), .malformed)
        XCTAssertEqual(ClientHello.parse(Self.fragment(h, at: [1, 2, 3])), .sni("api.example.test"))
    }

    func testGarbageNeverCrashes() {
        fuzz(Self.hello(sni: "api.example.test", extensions: [[0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, 0x68, 0x32]]),
             iterations: 4000, seed: 0xBEEF)
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let n = Int(rng.next() % 600)
            var b = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if n >= 2, rng.next() % 2 == 0 { b[0] = 0x16; b[1] = 0x03 }
            _ = ClientHello.parse(b)
        }
    }

    /// Random flips, length smashes, cuts and inserts; the parser must answer every time.
    private func fuzz(_ seed: [UInt8], iterations: Int, seed s: UInt64) {
        var rng = SplitMix64(seed: s)
        var counts: [String: Int] = [:]
        for _ in 0..<iterations {
            var b = seed
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                guard !b.isEmpty else { break }
                let i = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 5 {
                case 0: b[i] ^= UInt8(truncatingIfNeeded: 1 << (rng.next() % 8))
                case 1: b[i] = [0x00, 0xff, 0x7f, 0x80][Int(rng.next() % 4)]
                case 2: b.removeSubrange(i...)
                case 3: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                default: b[i] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            let r = ClientHello.parse(b)
            counts["\(r)".components(separatedBy: "(").first!, default: 0] += 1
        }
        XCTAssertGreaterThan(counts.values.reduce(0, +), 0)
    }
}
