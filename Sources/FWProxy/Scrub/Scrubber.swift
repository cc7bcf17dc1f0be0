/// Streaming scrubber: replaces every occurrence of any secret with its placeholder in a
/// byte stream fed chunk by chunk, including occurrences split across chunk boundaries.
///
/// At each position the longest secret that occurs there wins (leftmost-longest), so the
/// output does not depend on how the stream is cut: feeding byte by byte gives what one
/// `feed` of everything gives. Between chunks it holds back only a tail that is still a
/// proper prefix of some secret: at most (longest secret - 1) bytes.
///
/// It holds secret bytes, so its description and mirror show counts only.
public struct Scrubber: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let secrets: [[UInt8]]
    private let placeholders: [[UInt8]]
    /// For each first byte, the secrets (indices, longest first) that start with it.
    private let byFirst: [[Int]]
    /// 1 where `byFirst` is not empty: the hot loop reads this flat table only.
    private let starts: [UInt8]
    private var held: [UInt8] = []

    public init(pairs: [(secret: [UInt8], placeholder: [UInt8])]) {
        var seen = Set<[UInt8]>()
        let usable = pairs.enumerated()
            .filter { !$0.element.secret.isEmpty && seen.insert($0.element.secret).inserted }
            .sorted { a, b in
                a.element.secret.count != b.element.secret.count
                    ? a.element.secret.count > b.element.secret.count : a.offset < b.offset
            }
            .map(\.element)
        secrets = usable.map(\.secret)
        placeholders = usable.map(\.placeholder)
        var table = [[Int]](repeating: [], count: 256)
        for (i, s) in secrets.enumerated() { table[Int(s[0])].append(i) }
        byFirst = table
        starts = table.map { $0.isEmpty ? 0 : 1 }
    }

    /// Bytes held back, waiting for the next chunk to decide.
    public var heldBackCount: Int { held.count }

    /// The longest secret minus one: the most that is ever held back.
    public var maxHeldBack: Int { max(0, (secrets.first?.count ?? 0) - 1) }

    public var isEmpty: Bool { secrets.isEmpty }

    /// Scrubs `chunk` after what was held back; returns the bytes safe to emit now.
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        if secrets.isEmpty { return chunk }
        if held.isEmpty {
            return chunk.withUnsafeBufferPointer { process($0, final: false) } ?? chunk
        }
        let buffer = held + chunk
        return buffer.withUnsafeBufferPointer { process($0, final: false) } ?? buffer
    }

    /// The streaming fast path: nil when `chunk` goes out exactly as it came in (nothing held
    /// before or after it, no secret in it), so the caller can pass its own buffer on
    /// without a copy; otherwise the bytes to emit now, as `feed` gives them.
    public mutating func feedIfChanged(_ chunk: UnsafeRawBufferPointer) -> [UInt8]? {
        if secrets.isEmpty { return nil }
        if held.isEmpty {
            return process(chunk.bindMemory(to: UInt8.self), final: false)
        }
        return feed(Array(chunk))
    }

    /// The end of the stream: the held-back tail, scrubbed.
    public mutating func finish() -> [UInt8] {
        let buffer = held
        held = []
        if buffer.isEmpty { return [] }
        return buffer.withUnsafeBufferPointer { process($0, final: true) } ?? buffer
    }

    /// Whether `bytes` could hold (the start of) a secret: false when none of its bytes is
    /// the first byte of any secret. A cheap test before scrubbing a header value.
    public func mayMatch(_ bytes: String.UTF8View) -> Bool {
        if secrets.isEmpty { return false }
        return bytes.contains { starts[Int($0)] != 0 }
    }

    /// One-shot, for a header value.
    public func scrubbed(_ text: String) -> String {
        guard mayMatch(text.utf8) else { return text }
        var s = self
        s.held = []
        let out = s.feed(Array(text.utf8)) + s.finish()
        return String(decoding: out, as: UTF8.self)
    }

    /// One-shot, for a header value.
    public static func scrub(_ text: String, pairs: [(secret: [UInt8], placeholder: [UInt8])]) -> String {
        Scrubber(pairs: pairs).scrubbed(text)
    }

    /// One-shot over bytes.
    public static func scrub(_ bytes: [UInt8], pairs: [(secret: [UInt8], placeholder: [UInt8])]) -> [UInt8] {
        var s = Scrubber(pairs: pairs)
        return s.feed(bytes) + s.finish()
    }

    /// Scrubs `buf`, keeping back a tail that may still become a secret (unless `final`).
    /// nil when nothing was replaced or kept back: the output is `buf` itself (no copy made).
    private mutating func process(_ buf: UnsafeBufferPointer<UInt8>, final: Bool) -> [UInt8]? {
        var out: [UInt8] = []
        let n = buf.count
        var holdFrom = n
        var i = 0
        var copiedUpTo = 0
        starts.withUnsafeBufferPointer { starts in
            scan: while i < n {
                if starts[Int(buf[i])] == 0 { i += 1; continue }
                for k in byFirst[Int(buf[i])] {
                    let s = secrets[k]
                    let available = n - i
                    if available >= s.count {
                        if Self.equal(buf, from: i, s, count: s.count) {
                            if out.isEmpty { out.reserveCapacity(n) }
                            out.append(contentsOf: buf[copiedUpTo..<i])
                            out.append(contentsOf: placeholders[k])
                            i += s.count
                            copiedUpTo = i
                            continue scan
                        }
                    } else if !final, Self.equal(buf, from: i, s, count: available) {
                        // This secret may still start here: wait for more bytes. (Longer
                        // ones were tried first, so no full match here can beat it yet.)
                        holdFrom = i
                        break scan
                    }
                }
                i += 1
            }
        }
        if copiedUpTo == 0 && holdFrom == n {
            held = []
            return nil
        }
        out.append(contentsOf: buf[copiedUpTo..<min(i, holdFrom)])
        held = holdFrom < n ? Array(buf[holdFrom...]) : []
        return out
    }

    private static func equal(_ buf: UnsafeBufferPointer<UInt8>, from i: Int, _ s: [UInt8], count: Int) -> Bool {
        var j = 0
        while j < count {
            if buf[i + j] != s[j] { return false }
            j += 1
        }
        return true
    }

    public var description: String {
        "Scrubber(\(secrets.count) secret(s), \(held.count) byte(s) held back)"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["secrets": secrets.count, "heldBack": held.count], displayStyle: .struct)
    }
}
