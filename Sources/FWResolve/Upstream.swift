import FWPolicy
#if canImport(Glibc)
import Glibc
#endif

/// Forwards the DNS filter's allowed queries to the configured servers and reads their
/// answers for it. Blocking, and called from a thread pool: an exchange opens its own
/// sockets and closes them before it returns, so one value serves every thread. Like
/// `Transport` (fwctl resolve) it tries the servers in order for a bounded number of
/// rounds with an explicit timeout each, uses connected UDP sockets (stray datagrams are
/// dropped by the kernel, a closed port fails at once) and trusts a reply only once
/// `DNSMessage.readAnswer` has matched its id, QR and question.
public struct DNSUpstream: Sendable {
    public let servers: [SocketEndpoint]
    /// How long one server gets for one query, TCP connect included.
    public let timeoutMs: Int
    /// Rounds over all servers.
    public let attempts: Int
    /// SO_MARK on every socket, so the filter's nftables redirect lets these queries
    /// through to the real servers. Without CAP_NET_ADMIN the sockets go unmarked.
    public let mark: UInt32?

    public init(servers: [SocketEndpoint], timeoutMs: Int, attempts: Int, mark: UInt32?) {
        self.servers = servers
        self.timeoutMs = max(1, timeoutMs)
        self.attempts = max(1, attempts)
        self.mark = mark
    }

    /// Tries the servers in order for `attempts` rounds, `timeoutMs` each, over UDP, or
    /// over TCP when the client asked over TCP (`tcp`). A server's SERVFAIL or REFUSED
    /// goes on to the next server; if every server fails that way, the last such reply is
    /// returned. Nil when no server gave any reply (the caller then answers SERVFAIL).
    /// Takes at most about attempts * servers * timeoutMs. See `DNSMessage.readAnswer`
    /// for `capTTL` and what comes back; a truncated UDP reply is returned as it is, so the
    /// client asks again over TCP.
    public func exchange(_ query: DNSQueryMessage, tcp: Bool, capTTL: UInt32) -> DNSForwardedAnswer? {
        let addresses = servers.map(SocketAddress.init)
        // One connected UDP socket per server for the whole exchange: an answer that
        // arrives after its round is still taken in the next one (same id, same port).
        var sockets = [Int32?](repeating: nil, count: servers.count)
        defer { for fd in sockets.compactMap({ $0 }) { close(fd) } }
        var buffer = [UInt8](repeating: 0, count: 65535)
        var refusal: DNSForwardedAnswer?
        for _ in 0..<attempts {
            for server in servers.indices {
                let answer = tcp
                    ? overTCP(query, to: addresses[server], capTTL: capTTL)
                    : overUDP(query, to: addresses[server], socket: &sockets[server], buffer: &buffer, capTTL: capTTL)
                guard let answer else { continue }
                if answer.rcode == DNSMessage.serverFailure || answer.rcode == DNSMessage.refused {
                    refusal = answer
                    continue
                }
                return answer
            }
        }
        return refusal
    }

    /// One query to one server over UDP, on the server's socket (opened on first use).
    /// Datagrams that do not answer this query are skipped until one does or time is up.
    private func overUDP(_ query: DNSQueryMessage, to address: SocketAddress, socket: inout Int32?,
                         buffer: inout [UInt8], capTTL: UInt32) -> DNSForwardedAnswer? {
        if socket == nil, case .success(let fd) = connectedUDPSocket(to: address, mark: mark) {
            socket = fd
        }
        guard let fd = socket, send(fd, query.wire, query.wire.count, 0) == query.wire.count else { return nil }
        let deadline = Deadline(ms: timeoutMs)
        while waitFor(POLLIN, on: fd, until: deadline) {
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return nil   // ECONNREFUSED: nothing listens there; on to the next server
            }
            if let answer = DNSMessage.readAnswer(Array(buffer[0..<n]), to: query, capTTL: capTTL) {
                return answer
            }
        }
        return nil
    }

    /// One query to one server over a fresh TCP connection.
    private func overTCP(_ query: DNSQueryMessage, to address: SocketAddress, capTTL: UInt32) -> DNSForwardedAnswer? {
        guard case .success(let reply) = tcpExchange(query.wire, with: address, mark: mark,
                                                     until: Deadline(ms: timeoutMs)) else { return nil }
        return DNSMessage.readAnswer(reply, to: query, capTTL: capTTL)
    }
}
