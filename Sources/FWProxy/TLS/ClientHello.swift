/// Reads the server name (SNI) from the first bytes of a TLS connection, without TLS.
///
/// The ClientHello may span several handshake records (a client may fragment it); they are
/// reassembled. Bounded: each record at most 16 KiB (2^14, RFC 8446 5.1) plus its 5-byte
/// header, the ClientHello at most 64 KiB. Every length is checked against what is left,
/// so no input crashes it or makes it read outside the buffer.
public enum ClientHello {
    public enum Result: Equatable, Sendable {
        /// The bytes so far are a valid prefix; read more and call again with all of them.
        case needMoreData
        /// The host_name of the server_name extension, as sent (not normalized).
        case sni(String)
        /// A complete ClientHello without a server_name extension.
        case noSNI
        /// Not a TLS handshake record at all (plain HTTP, SSLv2, garbage).
        case notTLS
        /// A TLS handshake record, but not a well-formed ClientHello.
        case malformed
    }

    public static let maxRecordLength = 16_384
    /// A ClientHello may be spread over at most this many records.
    public static let maxRecords = 4
    public static let maxHelloLength = maxRecords * maxRecordLength - 4
    /// The most a caller ever needs to buffer: beyond this, `parse` has given an answer.
    public static let maxInputBytes = maxRecords * (maxRecordLength + 5)

    public static func parse<C: Collection>(_ bytes: C) -> Result where C.Element == UInt8 {
        parse(Array(bytes))
    }

    public static func parse(_ bytes: [UInt8]) -> Result {
        guard !bytes.isEmpty else { return .needMoreData }
        guard bytes[0] == 0x16 else { return .notTLS }
        guard bytes.count >= 2 else { return .needMoreData }
        guard bytes[1] == 0x03 else { return .notTLS }

        // Reassemble the handshake message from consecutive handshake records.
        var handshake: [UInt8] = []
        var offset = 0
        var needed: Int? = nil // the full handshake message length, once its header is in
        var records = 0
        while needed.map({ handshake.count < $0 }) ?? true {
            guard records < maxRecords else { return .malformed }
            records += 1
            guard offset + 5 <= bytes.count else { return checkPartialHeader(bytes, offset) }
            guard bytes[offset] == 0x16, bytes[offset + 1] == 0x03 else { return .malformed }
            let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
            guard length > 0, length <= maxRecordLength else { return .malformed }
            let start = offset + 5
            let available = min(length, bytes.count - start)
            handshake += bytes[start..<(start + available)]
            if needed == nil, handshake.count >= 4 {
                guard handshake[0] == 0x01 else { return .malformed } // client_hello
                let bodyLength = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
                guard bodyLength <= maxHelloLength else { return .malformed }
                needed = 4 + bodyLength
            }
            if let n = needed, handshake.count >= n { break }
            if available < length { return .needMoreData }
            offset = start + length
        }
        guard let n = needed else { return .needMoreData }
        return parseHello(handshake[4..<n])
    }

    /// A record header cut short: still a valid prefix as long as what is there fits.
    private static func checkPartialHeader(_ bytes: [UInt8], _ offset: Int) -> Result {
        let rest = bytes[offset...]
        if let t = rest.first, t != 0x16 { return .malformed }
        if rest.count >= 2, rest[offset + 1] != 0x03 { return .malformed }
        return .needMoreData
    }

    /// The ClientHello body (after the 4-byte handshake header), complete.
    private static func parseHello(_ body: ArraySlice<UInt8>) -> Result {
        var r = Reader(body)
        guard r.skip(2), r.skip(32),                            // legacy_version, random
              let sessionID = r.bytes8(), sessionID.count <= 32,
              let suites = r.bytes16(), suites.count >= 2, suites.count % 2 == 0,
              let compression = r.bytes8(), !compression.isEmpty else { return .malformed }
        if r.atEnd { return .noSNI } // no extensions block
        guard let extensions = r.bytes16(), r.atEnd else { return .malformed }

        var e = Reader(extensions)
        var seenTypes = Set<UInt16>()
        var sni: String?
        while !e.atEnd {
            guard let type = e.u16(), let data = e.bytes16() else { return .malformed }
            // RFC 8446 4.2: no extension type twice; two server_names would be ambiguous.
            guard seenTypes.insert(type).inserted else { return .malformed }
            if type == 0x0000 {
                guard let name = serverName(data) else { return .malformed }
                sni = name
            }
        }
        return sni.map(Result.sni) ?? .noSNI
    }

    /// server_name extension data: a list of (type, name) with exactly one host_name
    /// (type 0). nil (malformed) for an empty extension (as a server sends it), a list
    /// without a host_name, or two host_names.
    private static func serverName(_ data: ArraySlice<UInt8>) -> String? {
        var r = Reader(data)
        guard let list = r.bytes16(), r.atEnd, !list.isEmpty else { return nil }
        var l = Reader(list)
        var host: String?
        while !l.atEnd {
            guard let type = l.u8(), let name = l.bytes16() else { return nil }
            if type == 0 {
                guard host == nil else { return nil } // one host_name only (RFC 6066 3)
                guard !name.isEmpty, name.count <= 255,
                      name.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return nil }
                host = String(decoding: name, as: UTF8.self)
            }
        }
        return host
    }

    /// Bounds-checked big-endian reads over a slice.
    private struct Reader {
        var rest: ArraySlice<UInt8>
        init(_ s: ArraySlice<UInt8>) { rest = s }
        var atEnd: Bool { rest.isEmpty }

        mutating func skip(_ n: Int) -> Bool {
            guard rest.count >= n else { return false }
            rest = rest.dropFirst(n)
            return true
        }
        mutating func u8() -> UInt8? {
            guard let b = rest.first else { return nil }
            rest = rest.dropFirst()
            return b
        }
        mutating func u16() -> UInt16? {
            guard rest.count >= 2 else { return nil }
            let i = rest.startIndex
            let v = UInt16(rest[i]) << 8 | UInt16(rest[i + 1])
            rest = rest.dropFirst(2)
            return v
        }
        mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
            guard rest.count >= n else { return nil }
            let s = rest.prefix(n)
            rest = rest.dropFirst(n)
            return s
        }
        mutating func bytes8() -> ArraySlice<UInt8>? {
            guard let n = u8() else { return nil }
            return take(Int(n))
        }
        mutating func bytes16() -> ArraySlice<UInt8>? {
            guard let n = u16() else { return nil }
            return take(Int(n))
        }
    }
}
