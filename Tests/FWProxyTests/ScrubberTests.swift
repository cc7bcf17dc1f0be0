import XCTest
import FWTestSupport
@testable import FWProxy

/// Scrubbing tests. The "secrets" are fakes; comparisons never print the streams.
final class ScrubberTests: XCTestCase {
    typealias Pairs = [(secret: [UInt8], placeholder: [UInt8])]

    static func pairs(_ list: [(String, String)]) -> Pairs {
        list.map { (secret: Array($0.0.utf8), placeholder: Array($0.1.utf8)) }
    }

    let one = pairs([("sk-test-REALSECRET-123", "PLACEHOLDER-A")])
    let several = pairs([
        ("sk-test-REALSECRET-123", "PLACEHOLDER-A"),
        ("ghp_FAKEFAKEFAKE", "PLACEHOLDER-B"),
        ("xoxb-0000", "PLACEHOLDER-C"),
    ])

    /// Leftmost-longest over the whole input, the slow obvious way.
    static func reference(_ input: [UInt8], _ pairs: Pairs) -> [UInt8] {
        let sorted = pairs.filter { !$0.secret.isEmpty }.sorted { $0.secret.count > $1.secret.count }
        var out: [UInt8] = []
        var i = 0
        outer: while i < input.count {
            for p in sorted where i + p.secret.count <= input.count && input[i..<(i + p.secret.count)].elementsEqual(p.secret) {
                out += p.placeholder
                i += p.secret.count
                continue outer
            }
            out.append(input[i])
            i += 1
        }
        return out
    }

    /// Feeds `chunks`, checking the hold-back bound after each, then finishes.
    private func stream(_ chunks: [[UInt8]], _ pairs: Pairs, file: StaticString = #filePath, line: UInt = #line) -> [UInt8] {
        var s = Scrubber(pairs: pairs)
        var out: [UInt8] = []
        for c in chunks {
            out += s.feed(c)
            XCTAssertLessThanOrEqual(s.heldBackCount, s.maxHeldBack, file: file, line: line)
        }
        return out + s.finish()
    }

    private func same(_ a: [UInt8], _ b: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(a == b, "\(what): output differs (not shown)", file: file, line: line)
    }

    private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    func testOccurrenceInsideOneChunk() {
        let out = stream([bytes("{\"key\":\"sk-test-REALSECRET-123\",\"again\":\"sk-test-REALSECRET-123\"}")], one)
        same(out, bytes("{\"key\":\"PLACEHOLDER-A\",\"again\":\"PLACEHOLDER-A\"}"), "one chunk")
    }

    func testSplitAcrossTwoChunksAtEveryPoint() {
        let input = bytes("data: sk-test-REALSECRET-123\n\n")
        let want = bytes("data: PLACEHOLDER-A\n\n")
        for cut in 0...input.count {
            same(stream([Array(input[..<cut]), Array(input[cut...])], one), want, "cut at \(cut)")
        }
    }

    func testSplitAcrossThreeChunks() {
        let input = bytes("xsk-test-REALSECRET-123y")
        let want = bytes("xPLACEHOLDER-Ay")
        for a in 0...input.count {
            for b in a...input.count {
                same(stream([Array(input[..<a]), Array(input[a..<b]), Array(input[b...])], one), want, "cuts \(a), \(b)")
            }
        }
    }

    func testSeveralSecrets() {
        let input = bytes("a=sk-test-REALSECRET-123 b=ghp_FAKEFAKEFAKE c=xoxb-0000 d=xoxb-000 e=ghp_FAKE")
        let want = bytes("a=PLACEHOLDER-A b=PLACEHOLDER-B c=PLACEHOLDER-C d=xoxb-000 e=ghp_FAKE")
        same(stream([input], several), want, "several")
        same(Scrubber.scrub(input, pairs: several), want, "one-shot bytes")
    }

    func testOverlappingPrefixesLongestWins() {
        let p = Self.pairs([("SECRETXYZ", "<short>"), ("SECRETXYZ123", "<long>"), ("XYZ1", "<mid>")])
        same(stream([bytes("SECRETXYZ123")], p), bytes("<long>"), "longest")
        same(stream([bytes("SECRETXYZ124")], p), bytes("<short>124"), "shorter when the longer fails")
        same(stream([bytes("SECRETXYZ12")], p), bytes("<short>12"), "shorter at end of stream")
        same(stream(bytes("SECRETXYZ12").map { [$0] }, p), bytes("<short>12"), "byte by byte, end of stream")
        same(stream([bytes("SECRETXYZ1"), bytes("23")], p), bytes("<long>"), "longer completed by the next chunk")
        same(stream([bytes("SECRETSECRETXYZ123")], p), bytes("SECRET<long>"), "restart inside a partial match")
        // A secret that overlaps itself.
        let selfOverlap = Self.pairs([("aab", "#")])
        same(stream(bytes("aaab aab").map { [$0] }, selfOverlap), bytes("a# #"), "self-overlapping")
    }

    func testByteAtATimeEqualsOneShot() {
        var rng = SplitMix64(seed: 0x5C2B_B3E2)
        let alphabet = bytes("sk-tesREALCR123ghp_FAKxob0 \n")
        let secrets = several.map(\.secret)
        for _ in 0..<300 {
            var input: [UInt8] = []
            for _ in 0..<Int(rng.next() % 200) {
                if rng.next() % 8 == 0 {
                    let s = secrets[Int(rng.next() % UInt64(secrets.count))]
                    // A whole secret, or a prefix of one.
                    input += rng.next() % 2 == 0 ? s : Array(s.prefix(Int(rng.next() % UInt64(s.count))))
                } else {
                    input.append(alphabet[Int(rng.next() % UInt64(alphabet.count))])
                }
            }
            let want = Self.reference(input, several)
            same(stream([input], several), want, "one chunk vs reference")
            same(stream(input.map { [$0] }, several), want, "byte at a time")
            // Random cuts.
            var chunks: [[UInt8]] = []
            var i = 0
            while i < input.count {
                let n = min(input.count - i, Int(rng.next() % 40))
                chunks.append(Array(input[i..<(i + n)]))
                i += n
            }
            same(stream(chunks, several), want, "random chunks")
        }
    }

    func testHoldsBackAtMostLongestMinusOne() {
        var s = Scrubber(pairs: one)
        XCTAssertEqual(s.maxHeldBack, "sk-test-REALSECRET-123".utf8.count - 1)
        // A full prefix of the secret, minus its last byte, is held back entirely...
        let prefix = bytes("sk-test-REALSECRET-12")
        XCTAssertEqual(s.feed(bytes("hello ") + prefix), bytes("hello "))
        XCTAssertEqual(s.heldBackCount, prefix.count)
        // ...and released as soon as it cannot be the secret.
        XCTAssertEqual(s.feed(bytes("4")), prefix + bytes("4"))
        XCTAssertEqual(s.heldBackCount, 0)
        // Bytes that start no secret are never held.
        XCTAssertEqual(s.feed(bytes("plain text")), bytes("plain text"))
        XCTAssertEqual(s.heldBackCount, 0)
        XCTAssertEqual(s.finish(), [])
        // The tail is released by finish().
        var t = Scrubber(pairs: one)
        XCTAssertEqual(t.feed(bytes("x sk-te")), bytes("x "))
        XCTAssertEqual(t.finish(), bytes("sk-te"))
    }

    /// The no-copy streaming path the proxy uses: a chunk that comes back as nil goes out as
    /// it came. Random inputs cut at random points give exactly the reference output.
    func testFeedIfChangedStreamsLikeTheReference() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("sk-tesREALCx0b_ghp \n{}".utf8)
        for _ in 0..<300 {
            var input: [UInt8] = (0..<Int.random(in: 0...200, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                let secret = several.randomElement(using: &rng)!.secret
                input.insert(contentsOf: secret, at: Int.random(in: 0...input.count, using: &rng))
            }
            var scrubber = Scrubber(pairs: several)
            var out: [UInt8] = [], unchanged = 0, i = 0
            while i < input.count {
                let chunk = Array(input[i..<min(input.count, i + Int.random(in: 1...40, using: &rng))])
                i += chunk.count
                if let changed = chunk.withUnsafeBytes({ scrubber.feedIfChanged($0) }) { out += changed } else { out += chunk; unchanged += 1 }
            }
            out += scrubber.finish()
            XCTAssertTrue(out == Self.reference(input, several), "streamed output differs from the reference")
        }
        var clean = Scrubber(pairs: one)
        XCTAssertNil(Array("no secret here".utf8).withUnsafeBytes { clean.feedIfChanged($0) }, "a clean chunk is passed on as it is")
        XCTAssertNotNil(Array("a sk-test-REAL".utf8).withUnsafeBytes { clean.feedIfChanged($0) }, "a possible start is held back")
        XCTAssertFalse(Scrubber(pairs: one).mayMatch("nothing here".utf8))
        XCTAssertTrue(Scrubber(pairs: one).mayMatch("has an s".utf8))
    }

    func testHeaderOneShot() {
        XCTAssertTrue(Scrubber.scrub("Bearer sk-test-REALSECRET-123", pairs: one) == "Bearer PLACEHOLDER-A")
        XCTAssertEqual(Scrubber.scrub("nothing here", pairs: one), "nothing here")
        XCTAssertEqual(Scrubber.scrub("anything", pairs: []), "anything")
    }

    func testNoSecretsPassesThrough() {
        var s = Scrubber(pairs: Self.pairs([("", "x")]))
        XCTAssertTrue(s.isEmpty)
        XCTAssertEqual(s.feed(bytes("abc")), bytes("abc"))
        XCTAssertEqual(s.finish(), [])
    }

    func testLargeBodyIntact() {
        var rng = SplitMix64(seed: 42)
        var body = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next() % 251) }
        for k in stride(from: 1000, to: body.count - 100, by: 50_000) {
            let s = several[k % several.count].secret
            body.replaceSubrange(k..<(k + s.count), with: s)
        }
        var s = Scrubber(pairs: several)
        var out: [UInt8] = []
        var i = 0
        while i < body.count {
            let n = min(16_384, body.count - i)
            out += s.feed(Array(body[i..<(i + n)]))
            i += n
        }
        out += s.finish()
        same(out, Self.reference(body, several), "1 MiB")
        XCTAssertLessThan(out.count, body.count) // the planted secrets were replaced
    }
}
