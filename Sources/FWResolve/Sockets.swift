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
