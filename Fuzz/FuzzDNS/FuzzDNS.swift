// libFuzzer target: the DNS filter's message layer (FWResolve.DNSMessage): a client's
// query (parseQuery, and the filter's own replies to it) and a server's reply to a query
// (readAnswer: the addresses that go into the firewall's sets, the TTLs capped in place).
//
// Input: byte 0 picks what the rest is.
//   0: bytes from a client                      -> parseQuery
//   1: a server's reply to "example.com A" (id 0x1234)
//   2: a server's reply to "www.example.com AAAA" (id 0xbeef)
//   3: a server's reply to the query made of its own id and question (so the fuzzer can
//      vary the name without matching a fixed one)  -> parseQuery + readAnswer
// Checks, beyond "no trap, no memory error":
//   - every reply the filter makes carries the query's id and QR, and is itself dropped
//     when it comes back in (no loop between two filters);
//   - the filter's own reply to a query reads back as an answer to it, with its rcode and
//     no addresses;
//   - readAnswer keeps the message's size and header, caps the TTL it reports, and
//     reports a TTL exactly when it reports addresses.
import FWPolicy
import FWResolve
#if canImport(Glibc)
import Glibc
#endif

let capTTL: UInt32 = 300

func question(_ labels: [String], type: UInt16) -> [UInt8] {
    var q: [UInt8] = []
    for l in labels { q.append(UInt8(l.utf8.count)); q += Array(l.utf8) }
    return q + [0, UInt8(type >> 8), UInt8(type & 0xff), 0, 1]
}

func fixedQuery(id: UInt16, _ labels: [String], type: UInt16) -> DNSQueryMessage {
    let bytes = [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0] + question(labels, type: type)
    guard case .query(let q) = DNSMessage.parseQuery(bytes) else { fatalError("fixture query not accepted") }
    return q
}

let queryA = fixedQuery(id: 0x1234, ["example", "com"], type: 1)
let queryAAAA = fixedQuery(id: 0xbeef, ["www", "example", "com"], type: 28)

func id(_ b: [UInt8]) -> UInt16 { UInt16(b[0]) << 8 | UInt16(b[1]) }

func checkReply(_ reply: [UInt8], id want: UInt16) {
    precondition(reply.count >= 12 && id(reply) == want && reply[2] & 0x80 != 0, "a reply without the id or QR")
    precondition(DNSMessage.parseQuery(reply) == .drop, "the filter's reply is not dropped when it comes back")
}

func checkQuery(_ bytes: [UInt8]) -> DNSQueryMessage? {
    switch DNSMessage.parseQuery(bytes) {
    case .drop:
        precondition(bytes.count < 12 || bytes[2] & 0x80 != 0, "a query dropped without an answer")
        return nil
    case .reply(let r):
        checkReply(r, id: id(bytes))
        return nil
    case .query(let q):
        precondition(q.wire == bytes && q.id == id(bytes))
        precondition(!q.name.utf8.contains { $0 >= 0x41 && $0 <= 0x5a }, "name not lower case: \(q.name)")
        for rcode in [DNSMessage.nameError, DNSMessage.refused, DNSMessage.serverFailure] {
            let r = DNSMessage.reply(to: q, rcode: rcode)
            checkReply(r, id: q.id)
            guard let back = DNSMessage.readAnswer(r, to: q, capTTL: capTTL) else {
                preconditionFailure("the filter's own reply (rcode \(rcode)) is not an answer to its query")
            }
            precondition(back.rcode == rcode && back.addresses.isEmpty && back.ttl == nil && back.wire == r)
        }
        return q
    }
}

func checkAnswer(_ reply: [UInt8], to query: DNSQueryMessage) {
    guard let a = DNSMessage.readAnswer(reply, to: query, capTTL: capTTL) else { return }
    precondition(a.wire.count == reply.count && a.wire.prefix(12).elementsEqual(reply.prefix(12)),
                 "readAnswer changed the message's size or header")
    precondition(a.rcode == reply[3] & 0x0f)
    precondition(a.addresses.isEmpty == (a.ttl == nil), "addresses \(a.addresses) with TTL \(String(describing: a.ttl))")
    if let ttl = a.ttl { precondition(ttl <= capTTL) }
    precondition(a.addresses == a.addresses.sorted() && Set(a.addresses).count == a.addresses.count,
                 "addresses not sorted and unique: \(a.addresses)")
    // Capping is idempotent: the capped message reads back the same.
    if reply[2] & 0x02 == 0, let again = DNSMessage.readAnswer(a.wire, to: query, capTTL: capTTL) {
        precondition(again == a, "reading the capped message again differs")
    }
}

/// The query a client would have sent for the reply's own question: its id, RD, the
/// question section as it stands (or nothing when it has none).
func derivedQuery(_ reply: [UInt8]) -> DNSQueryMessage? {
    guard reply.count > 12 else { return nil }
    var at = 12
    while at < reply.count {
        let n = Int(reply[at])
        if n == 0 { at += 1; break }
        guard n < 64 else { return nil }
        at += 1 + n
    }
    guard at + 4 <= reply.count else { return nil }
    let bytes = Array(reply[0..<2]) + [0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0] + Array(reply[12..<(at + 4)])
    return checkQuery(bytes)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let mode = input.first else { return 0 }
    let bytes = Array(input.dropFirst())
    switch mode % 4 {
    case 0: _ = checkQuery(bytes)
    case 1: checkAnswer(bytes, to: queryA)
    case 2: checkAnswer(bytes, to: queryAAAA)
    default:
        if let q = derivedQuery(bytes) { checkAnswer(bytes, to: q) }
    }
    return 0
}

#if !FUZZING
import FuzzReplay
import Foundation

/// Replays inputs without libFuzzer: `FuzzDNS FILE-OR-DIR...`.
@main struct Replay {
    static func main() {
        replayInputs(Array(CommandLine.arguments.dropFirst()), target: "FuzzDNS", fuzzOne)
    }
}
#endif
