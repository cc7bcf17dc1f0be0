// libFuzzer target: the SNI peek (FWProxy.ClientHello.parse) and what the proxy decides
// with the name it finds (ProxyRules.entry and the identity check, as SNIPin and
// TransparentHandler do).
//
// Input: byte 0 picks the framing, the rest is the payload.
//   even: the payload is the first bytes of a connection, as read from the socket;
//   odd:  byte 1 sets a record size (1...256) and the payload is a handshake message,
//         cut into TLS handshake records of that size (reassembly without having to
//         guess record lengths).
// Checks, beyond "no trap, no memory error":
//   - an answer given for a prefix of the bytes is the answer for all of them (SNIPin and
//     TransparentHandler call parse again with more bytes after .needMoreData, and act
//     on the first answer);
//   - an SNI is 1...255 printable ASCII bytes;
//   - maxInputBytes bytes are always enough for an answer.
import FWPolicy
import FWProxy
#if canImport(Glibc)
import Glibc
#endif

let rules: ProxyRules = {
    func entry(_ i: Int, _ host: String, _ ports: [UInt16], methods: [String]? = nil, paths: [String]? = nil) -> ProxyEntry {
        guard case .success(let h) = HostPattern.parse(host) else { fatalError("bad fixture host \(host)") }
        return ProxyEntry(index: i, host: h, ports: ports.map { PortRange(port: $0) }, methods: methods, paths: paths)
    }
    return ProxyRules(entries: [
        entry(0, "api.example.com", [443]),
        entry(1, "*.example.org", [443, 8443]),
        entry(2, "registry.npmjs.org", [443], methods: ["GET"]),
        entry(3, "*.pkg.example.org", [443], paths: ["/v1/*"]),
    ])
}()

func records(_ message: ArraySlice<UInt8>, size: Int) -> [UInt8] {
    var out: [UInt8] = []
    var rest = message
    repeat {
        let chunk = rest.prefix(size)
        rest = rest.dropFirst(chunk.count)
        out += [0x16, 0x03, 0x01, UInt8(chunk.count >> 8), UInt8(chunk.count & 0xff)]
        out += chunk
    } while !rest.isEmpty
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let mode = input.first else { return 0 }
    let bytes: [UInt8]
    if mode & 1 == 0 {
        bytes = Array(input.dropFirst())
    } else {
        guard input.count >= 2 else { return 0 }
        bytes = records(input.dropFirst(2), size: Int(input[1]) + 1)
    }

    let result = ClientHello.parse(bytes)
    // The generic entry point (what the handlers call with a ByteBuffer view) agrees.
    precondition(ClientHello.parse(bytes[...]) == result)
    if bytes.count >= ClientHello.maxInputBytes {
        precondition(result != .needMoreData, "needMoreData after \(bytes.count) bytes")
    }

    // Prefixes: at every record boundary, and a few cuts besides.
    var cuts = Set([1, 2, 3, 5, 6, 9, bytes.count / 2, bytes.count - 1])
    var offset = 0
    while offset + 5 <= bytes.count {
        cuts.insert(offset + 5)
        offset += 5 + (Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4]))
        cuts.insert(offset)
    }
    for cut in cuts where cut > 0 && cut < bytes.count {
        let early = ClientHello.parse(Array(bytes[..<cut]))
        if early != .needMoreData {
            precondition(early == result, "prefix of \(cut) bytes gives \(early), all \(bytes.count) give \(result)")
        }
    }

    guard case .sni(let sni) = result else { return 0 }
    precondition(!sni.isEmpty && sni.utf8.count <= 255 && sni.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f },
                 "SNI \(sni.debugDescription)")
    // What the proxy does with it: the entry (transparent mode), and the pin against a
    // CONNECT target (a tunnel).
    for port: UInt16 in [443, 8443] {
        if case .success(let e) = rules.entry(host: sni, port: port) {
            precondition(e.host.matches(sni), "entry \(e.host) chosen for \(sni)")
            precondition(e.allowsPort(port))
            precondition(ProxyRules.checkIdentity(sni, seen: sni, what: "SNI", port: port) == nil,
                         "an allowed SNI does not match itself: \(sni)")
        }
    }
    _ = ProxyRules.checkIdentity("api.example.com", seen: sni, what: "SNI", against: "CONNECT target", port: 443)
    return 0
}

#if !FUZZING
import FuzzReplay
import Foundation

/// Replays inputs without libFuzzer: `FuzzClientHello FILE-OR-DIR...`.
@main struct Replay {
    static func main() {
        replayInputs(Array(CommandLine.arguments.dropFirst()), target: "FuzzClientHello", fuzzOne)
    }
}
#endif
