import CNetfilter
#if canImport(Glibc)
import Glibc
#endif

/// One nf_tables transaction: BATCH_BEGIN, the messages, BATCH_END, sent as one datagram.
/// Every message asks for an ACK and is remembered by sequence number, so a refusal can be
/// named ("set allow4_tcp_443: kernel refused: ...").
final class Batch {
    private let batch: OpaquePointer
    private(set) var labels: [UInt32: String] = [:]
    private let socket: NetlinkSocket
    let beginSeq: UInt32

    /// `genid`: the ruleset generation the batch was built against; the kernel refuses the
    /// batch (ERESTART) if someone changed the ruleset since.
    init(socket: NetlinkSocket, genid: UInt32?) {
        self.socket = socket
        let page = Int(getpagesize()) * 32
        // The overrun must hold the largest single message (a chunk of set elements).
        batch = nftnl_batch_alloc(UInt32(page), 64 * 1024)
        beginSeq = socket.allocateSeq()
        let nlh = mnl_nlmsg_put_header(nftnl_batch_buffer(batch))!
        nlh.pointee.nlmsg_type = UInt16(NFNL_MSG_BATCH_BEGIN)
        nlh.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST)
        nlh.pointee.nlmsg_seq = beginSeq
        let gen = mnl_nlmsg_put_extra_header(nlh, MemoryLayout<nfgenmsg>.size)!.assumingMemoryBound(to: nfgenmsg.self)
        gen.pointee.nfgen_family = UInt8(AF_UNSPEC)
        gen.pointee.version = UInt8(NFNETLINK_V0)
        gen.pointee.res_id = UInt16(NFNL_SUBSYS_NFTABLES).bigEndian
        if let g = genid { mnl_attr_put_u32(nlh, UInt16(NFNL_BATCH_GENID.rawValue), g.bigEndian) }
        nftnl_batch_update(batch)
    }

    deinit { nftnl_batch_free(batch) }

    /// Adds one message; `payload` fills it (nftnl_*_nlmsg_build_payload).
    func add(_ type: Int32, flags: Int32, label: String, payload: (UnsafeMutablePointer<nlmsghdr>) -> Void) {
        let seq = socket.allocateSeq()
        let buf = nftnl_batch_buffer(batch)!.assumingMemoryBound(to: CChar.self)
        let nlh = nftnl_nlmsg_build_hdr(buf, UInt16(type), UInt16(NFPROTO_INET), UInt16(flags | NLM_F_ACK), seq)!
        payload(nlh)
        nftnl_batch_update(batch)
        labels[seq] = label
    }

    /// Sends the batch and reads one reply per message. `commit: false` leaves BATCH_END
    /// out: the kernel validates the whole transaction, then aborts it (`apply --check`).
    func send(commit: Bool) throws(NetlinkError) {
        if commit {
            nftnl_batch_end(nftnl_batch_buffer(batch)!.assumingMemoryBound(to: CChar.self), socket.allocateSeq())
            nftnl_batch_update(batch)
        }
        let count = nftnl_batch_iovec_len(batch)
        var iov = [iovec](repeating: iovec(), count: Int(count))
        nftnl_batch_iovec(batch, &iov, UInt32(count))
        try socket.send(&iov)

        var pending = Set(labels.keys)
        var firstError: NetlinkError?
        try socket.receive { (msg: NetlinkMessage) throws(NetlinkError) -> Bool in
            guard let code = msg.errorCode else { return false }
            if code != 0 && firstError == nil {
                let e = -code
                if msg.seq == beginSeq, e == ERESTART { firstError = .generationChanged }
                // EPERM is missing privilege only when this process lacks CAP_NET_ADMIN; with
                // it, the kernel is refusing the object (e.g. a table another process owns).
                else if e == EPERM && !Privilege.hasNetAdmin() { firstError = .permission(labels[msg.seq] ?? "netlink") }
                else { firstError = .refused(object: labels[msg.seq] ?? "the transaction", errno: e) }
                // A refused BATCH_BEGIN ends the batch: nothing else is answered.
                if msg.seq == beginSeq { return true }
            }
            pending.remove(msg.seq)
            return pending.isEmpty
        }
        if let e = firstError { throw e }
    }

    var messageCount: Int { labels.count }
}
