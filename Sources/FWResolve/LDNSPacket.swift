import CLdns

/// The one way fwctl turns untrusted DNS bytes into an ldns packet.
///
/// ldns_wire2pkt (ldns 1.8) keeps a TSIG record of the additional section as the packet's
/// signature and overwrites it with the next one without freeing it, so every message with
/// two TSIG records leaked them; a client of the DNS filter could send those at will. fwctl
/// signs nothing and none of its peers does, so a signed message is refused. A message
/// that could hold two (two or more additional records) is walked first, with ldns_wire2rr
/// exactly as ldns_wire2pkt walks it, so both see the same records; any other is parsed
/// once (this is on every query's path) and refused when ldns kept a signature. Found by
/// Fuzz/FuzzDNS.
enum LDNSPacket {
    static let tsig = UInt16(LDNS_RR_TYPE_TSIG.rawValue)

    /// The parsed packet (the caller frees it with ldns_pkt_free), or nil when ldns cannot
    /// read `bytes` or they carry a TSIG record.
    static func parse(_ bytes: [UInt8]) -> UnsafeMutablePointer<ldns_pkt>? {
        if let header = DNSHeader(bytes), header.additionals >= 2, carriesTSIG(bytes) { return nil }
        var parsed: UnsafeMutablePointer<ldns_pkt>?
        let status = bytes.withUnsafeBufferPointer { ldns_wire2pkt(&parsed, $0.baseAddress, $0.count) }
        guard status == LDNS_STATUS_OK, let pkt = parsed else { return nil }
        guard ldns_pkt_tsig(pkt) == nil else { ldns_pkt_free(pkt); return nil }
        return pkt
    }

    /// Whether ldns would read a TSIG record anywhere in `bytes` before it stops.
    static func carriesTSIG(_ bytes: [UInt8]) -> Bool {
        guard let header = DNSHeader(bytes) else { return false }
        let sections: [(Int, ldns_pkt_section)] = [
            (Int(header.questions), LDNS_SECTION_QUESTION), (Int(header.answers), LDNS_SECTION_ANSWER),
            (Int(header.authorities), LDNS_SECTION_AUTHORITY), (Int(header.additionals), LDNS_SECTION_ADDITIONAL),
        ]
        var pos = DNSHeader.size
        return bytes.withUnsafeBufferPointer { buffer -> Bool in
            for (count, section) in sections {
                for _ in 0..<count {
                    var rr: UnsafeMutablePointer<ldns_rr>?
                    let status = ldns_wire2rr(&rr, buffer.baseAddress, buffer.count, &pos, section)
                    guard status == LDNS_STATUS_OK, let record = rr else { return false }
                    let type = UInt16(truncatingIfNeeded: ldns_rr_get_type(record).rawValue)
                    ldns_rr_free(record)
                    if type == tsig { return true }
                }
            }
            return false
        }
    }
}
