import CNetfilter
#if canImport(Glibc)
import Glibc
#endif

/// One netlink reply, copied out of the receive buffer.
struct NetlinkMessage {
    var type: UInt16
    var flags: UInt16
    var seq: UInt32
    /// The whole message, header included, so libnftnl's *_nlmsg_parse can read it.
    var bytes: [UInt8]

    /// For NLMSG_ERROR: 0 is an ACK, otherwise a negative errno.
    var errorCode: Int32? {
        guard type == UInt16(NLMSG_ERROR), bytes.count >= 20 else { return nil }
        return bytes.withUnsafeBytes { $0.load(fromByteOffset: 16, as: Int32.self) }
    }

    func withHeader<T>(_ body: (UnsafePointer<nlmsghdr>) throws -> T) rethrows -> T {
        try bytes.withUnsafeBytes { try body($0.baseAddress!.assumingMemoryBound(to: nlmsghdr.self)) }
    }
}

/// A NETLINK_NETFILTER socket (libmnl). The only place fwctl talks to the kernel.
final class NetlinkSocket {
    private let nl: OpaquePointer
    let portID: UInt32
    private var nextSeq: UInt32

    init() throws(NetlinkError) {
        guard let nl = mnl_socket_open(NETLINK_NETFILTER) else {
            throw .system("cannot open a netfilter netlink socket: \(String(cString: strerror(errno)))")
        }
        guard mnl_socket_bind(nl, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            mnl_socket_close(nl)
            throw .system("cannot bind the netlink socket: \(String(cString: strerror(errno)))")
        }
        self.nl = nl
        portID = mnl_socket_get_portid(nl)
        nextSeq = UInt32(truncatingIfNeeded: time(nil))
        // Large batches (100,000 set elements) must fit; FORCE works for root, the plain
        // option is the fallback within the system's limits.
        var size: Int32 = 64 << 20
        let fd = mnl_socket_get_fd(nl)
        if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    deinit { mnl_socket_close(nl) }

    func allocateSeq() -> UInt32 {
        nextSeq &+= 1
        return nextSeq
    }

    /// Sends the buffers as one datagram (sendmsg with an iovec per batch page).
    func send(_ iov: inout [iovec]) throws(NetlinkError) {
        var sa = sockaddr_nl()
        sa.nl_family = sa_family_t(AF_NETLINK)
        let total = iov.reduce(0) { $0 + $1.iov_len }
        let sent = withUnsafeMutablePointer(to: &sa) { saPtr in
            iov.withUnsafeMutableBufferPointer { iovPtr -> Int in
                var msg = msghdr()
                msg.msg_name = UnsafeMutableRawPointer(saPtr)
                msg.msg_namelen = socklen_t(MemoryLayout<sockaddr_nl>.size)
                msg.msg_iov = iovPtr.baseAddress
                msg.msg_iovlen = iovPtr.count
                return sendmsg(mnl_socket_get_fd(nl), &msg, 0)
            }
        }
        guard sent == total else {
            let e = errno
            if e == EPERM { throw .permission("netlink") }
            throw .system("netlink send failed: \(String(cString: strerror(e)))")
        }
    }

    func send(_ bytes: [UInt8]) throws(NetlinkError) {
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        defer { raw.deallocate() }
        raw.copyBytes(from: bytes)
        var iov = [iovec(iov_base: raw.baseAddress, iov_len: raw.count)]
        try send(&iov)
    }

    /// Receives replies until `done` says so. `timeoutMs` bounds each wait, so a missing
    /// reply ends in an error instead of a hang.
    func receive(timeoutMs: Int32 = 5000, until done: (NetlinkMessage) throws(NetlinkError) -> Bool) throws(NetlinkError) {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        let fd = mnl_socket_get_fd(nl)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, timeoutMs)
            guard ready > 0 else { throw .system("netlink: no reply from the kernel within \(timeoutMs) ms") }
            let n = buffer.withUnsafeMutableBytes { mnl_socket_recvfrom(nl, $0.baseAddress, $0.count) }
            guard n > 0 else {
                let e = errno
                if e == ENOBUFS { throw .system("netlink: receive buffer overrun (too many replies at once)") }
                throw .system("netlink receive failed: \(String(cString: strerror(e)))")
            }
            var offset = 0
            while offset + MemoryLayout<nlmsghdr>.size <= n {
                let header = buffer.withUnsafeBytes { $0.load(fromByteOffset: offset, as: nlmsghdr.self) }
                let len = Int(header.nlmsg_len)
                guard len >= MemoryLayout<nlmsghdr>.size, offset + len <= n else { break }
                let msg = NetlinkMessage(type: header.nlmsg_type, flags: header.nlmsg_flags, seq: header.nlmsg_seq,
                                         bytes: Array(buffer[offset..<offset + len]))
                if try done(msg) { return }
                offset += (len + 3) & ~3
            }
        }
    }

    /// One request and its answer: a multipart dump (every message before DONE), or with
    /// `untilFirstReply` a single reply message.
    func dump(_ request: [UInt8], seq: UInt32, untilFirstReply: Bool = false) throws(NetlinkError) -> [NetlinkMessage] {
        try send(request)
        var out: [NetlinkMessage] = []
        try receive { (msg: NetlinkMessage) throws(NetlinkError) -> Bool in
            guard msg.seq == seq else { return false }
            if msg.type == UInt16(NLMSG_DONE) { return true }
            if let code = msg.errorCode {
                if code == 0 { return true }
                if -code == EPERM { throw .permission("reading the ruleset") }
                if -code == ENOENT { return true } // the table does not exist: an empty dump
                throw .system("netlink dump failed: \(String(cString: strerror(-code)))")
            }
            out.append(msg)
            return untilFirstReply
        }
        return out
    }
}
