import Dispatch
import FWPolicy
#if canImport(Glibc)
import Glibc
#endif

/// A point in monotonic time that a query must not wait past.
struct Deadline {
    private let end: UInt64

    init(ms: Int) {
        end = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, ms)) * 1_000_000
    }

    /// Rounded up, so poll() never spins on a zero timeout just before the end.
    var remainingMs: Int {
        let now = DispatchTime.now().uptimeNanoseconds
        return now >= end ? 0 : Int((end - now + 999_999) / 1_000_000)
    }
}

/// A server's address as the socket calls want it, built once per server.
struct SocketAddress {
    let family: Int32
    private var storage = sockaddr_storage()
    private let length: socklen_t

    init(_ endpoint: SocketEndpoint) {
        switch endpoint.address.family {
        case .ipv4:
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = endpoint.port.bigEndian
            sin.sin_addr.s_addr = UInt32(truncatingIfNeeded: endpoint.address.value).bigEndian
            family = AF_INET
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeBytes(of: sin) { src in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
            }
        case .ipv6:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = endpoint.port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: endpoint.address.bytes) }
            family = AF_INET6
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeBytes(of: sin6) { src in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
            }
        }
    }

    /// connect(2); -1 with errno set on failure.
    func connectSocket(_ fd: Int32) -> Int32 {
        withUnsafePointer(to: storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
    }
}

/// poll(2) on one descriptor until `deadline`; false on timeout.
func waitFor(_ events: Int32, on fd: Int32, until deadline: Deadline) -> Bool {
    while true {
        let remaining = deadline.remainingMs
        guard remaining > 0 else { return false }
        var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
        let ready = poll(&entry, 1, Int32(remaining))
        if ready < 0 && errno == EINTR { continue }
        return ready > 0
    }
}

// MARK: - Sockets shared by Transport (fwctl resolve) and DNSUpstream (the DNS filter)

/// Why a socket exchange gave up. Each caller words it its own way.
enum SocketFailure: Error, Equatable {
    case timeout
    /// A stream ended before the whole message came.
    case closedByPeer
    /// The call that failed ("socket", "TCP connect", ...) and its errno.
    case system(String, Int32)
}

/// SO_MARK from <asm-generic/socket.h>, spelled out because it is Linux-only.
let socketMarkOption: Int32 = 36

/// Sets SO_MARK on `fd`: the DNS filter's nftables rules exempt marked packets from the
/// redirect to the filter, so fwctl's own queries reach the real servers instead of
/// looping back. Without CAP_NET_ADMIN the kernel says EPERM; the socket then stays
/// unmarked and works, and the rules must exempt fwctl some other way (by uid). Returns
/// 0, or the errno of any other failure.
func applyMark(_ mark: UInt32?, to fd: Int32) -> Int32 {
    guard var value = mark else { return 0 }
    if setsockopt(fd, SOL_SOCKET, socketMarkOption, &value, socklen_t(MemoryLayout<UInt32>.size)) == 0 {
        return 0
    }
    return errno == EPERM ? 0 : errno
}

/// The mark the kernel holds for `fd` (getsockopt SO_MARK); nil if it cannot be read.
/// For tests and diagnostics.
func appliedMark(of fd: Int32) -> UInt32? {
    var value: UInt32 = 0
    var size = socklen_t(MemoryLayout<UInt32>.size)
    return getsockopt(fd, SOL_SOCKET, socketMarkOption, &value, &size) == 0 ? value : nil
}

/// A new close-on-exec socket of `type` (SOCK_DGRAM or SOCK_STREAM, optionally with
/// SOCK_NONBLOCK) for `address`'s family, marked with `mark`. `label` names the call in
/// failures ("socket" or "TCP socket").
func openSocket(for address: SocketAddress, type: Int32, mark: UInt32?, label: String) -> Result<Int32, SocketFailure> {
    let fd = socket(address.family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failure(.system(label, errno)) }
    let code = applyMark(mark, to: fd)
    guard code == 0 else {
        close(fd)
        return .failure(.system("\(label) SO_MARK", code))
    }
    return .success(fd)
}

/// A UDP socket connected to `address`: the kernel then drops datagrams from anyone else
/// and reports a closed port (ICMP unreachable) as ECONNREFUSED at once.
func connectedUDPSocket(to address: SocketAddress, mark: UInt32?) -> Result<Int32, SocketFailure> {
    openSocket(for: address, type: Int32(SOCK_DGRAM.rawValue), mark: mark, label: "socket").flatMap { fd in
        guard address.connectSocket(fd) == 0 else {
            let code = errno
            close(fd)
            return .failure(.system("connect", code))
        }
        return .success(fd)
    }
}

/// One DNS message over a fresh TCP connection and the one message that comes back, each
/// behind its two-byte length (RFC 1035 4.2.2), all before `deadline`. The reply is
/// returned as received: the caller checks that it answers `message`.
func tcpExchange(_ message: [UInt8], with address: SocketAddress, mark: UInt32?,
                 until deadline: Deadline) -> Result<[UInt8], SocketFailure> {
    guard let length = UInt16(exactly: message.count) else { return .failure(.system("TCP send", EMSGSIZE)) }
    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
    return openSocket(for: address, type: type, mark: mark, label: "TCP socket").flatMap { fd in
        defer { close(fd) }
        let framed = [UInt8(length >> 8), UInt8(length & 0xff)] + message
        if let failure = tcpConnect(fd, address, deadline) ?? tcpWrite(fd, framed, deadline) {
            return .failure(failure)
        }
        return tcpRead(fd, 2, deadline).flatMap { header in
            tcpRead(fd, Int(header[0]) << 8 | Int(header[1]), deadline)
        }
    }
}

private func tcpConnect(_ fd: Int32, _ address: SocketAddress, _ deadline: Deadline) -> SocketFailure? {
    if address.connectSocket(fd) != 0 && errno != EINPROGRESS {
        return .system("TCP connect", errno)
    }
    guard waitFor(POLLOUT, on: fd, until: deadline) else { return .timeout }
    var code: Int32 = 0
    var size = socklen_t(MemoryLayout<Int32>.size)
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &size)
    return code == 0 ? nil : .system("TCP connect", code)
}

private func tcpWrite(_ fd: Int32, _ bytes: [UInt8], _ deadline: Deadline) -> SocketFailure? {
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n > 0 { sent += n; continue }
        guard n < 0, errno == EAGAIN || errno == EINTR else { return .system("TCP send", errno) }
        guard waitFor(POLLOUT, on: fd, until: deadline) else { return .timeout }
    }
    return nil
}

/// Exactly `count` bytes (at most 65535 here, from a two-byte length).
private func tcpRead(_ fd: Int32, _ count: Int, _ deadline: Deadline) -> Result<[UInt8], SocketFailure> {
    var bytes = [UInt8](repeating: 0, count: count)
    var got = 0
    while got < count {
        let n = bytes[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { got += n; continue }
        if n == 0 { return .failure(.closedByPeer) }
        guard errno == EAGAIN || errno == EINTR else { return .failure(.system("TCP receive", errno)) }
        guard waitFor(POLLIN, on: fd, until: deadline) else { return .failure(.timeout) }
    }
    return .success(bytes)
}
