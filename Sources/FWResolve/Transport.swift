import FWPolicy
#if canImport(Glibc)
import Glibc
#endif

/// Asks the configured servers, in order and for a bounded number of rounds, with
/// explicit timeouts. One instance belongs to one worker thread: it keeps one
/// connected UDP socket per server, so the kernel drops datagrams from anyone else
/// and reports a closed port (ICMP unreachable) at once instead of after a timeout.
/// Every socket carries `options.mark` (SO_MARK) when one is set.
final class Transport {
    /// What a query finally got: an answer to use (NOERROR or NXDOMAIN) or why not.
    enum Reply: Equatable {
        case response(DNSResponse)
        case failure(NameStatus, String)
    }

    private let servers: [SocketEndpoint]
    private let addresses: [SocketAddress]
    private let timeoutMs: Int
    private let attempts: Int
    private let mark: UInt32?
    private var sockets: [Int32?]
    /// Reused for every datagram: large enough for any UDP answer.
    private var buffer = [UInt8](repeating: 0, count: 65535)

    init(options: ResolverOptions) {
        servers = options.servers
        addresses = options.servers.map(SocketAddress.init)
        timeoutMs = max(1, options.timeoutMs)
        attempts = max(1, options.attempts)
        mark = options.mark
        sockets = Array(repeating: nil, count: servers.count)
    }

    deinit {
        for fd in sockets.compactMap({ $0 }) { close(fd) }
    }

    /// Sends all queries at once and waits for each one's final reply. The time spent is
    /// bounded by timeoutMs * attempts * servers, plus one TCP exchange per truncation.
    func exchange(_ queries: [DNSQuery]) -> [Reply] {
        guard !servers.isEmpty else {
            return queries.map { _ in .failure(.error, "no DNS servers configured") }
        }
        var replies = [Reply?](repeating: nil, count: queries.count)
        var failures = [[Int: ServerFailure]](repeating: [:], count: queries.count)
        rounds: for _ in 0..<attempts {
            for server in servers.indices {
                let pending = queries.indices.filter { replies[$0] == nil }
                if pending.isEmpty { break rounds }
                let outcomes = ask(server, pending.map { queries[$0] })
                for (k, i) in pending.enumerated() {
                    switch outcomes[k] {
                    case .answered(let response): replies[i] = .response(response)
                    case .failed(let failure): failures[i][server] = failure
                    }
                }
            }
        }
        return queries.indices.map { replies[$0] ?? summarize(failures[$0]) }
    }

    // MARK: - One server

    /// Why one server gave no usable answer.
    private enum ServerFailure: Error, Equatable {
        case timeout
        case rcode(DNSResponse)
        case broken(String)

        var status: NameStatus {
            switch self {
            case .timeout: return .timeout
            case .rcode(let r) where r.rcode == DNSResponse.serverFailure: return .servfail
            case .rcode(let r) where r.rcode == DNSResponse.refused: return .refused
            case .rcode, .broken: return .error
            }
        }

        var text: String {
            switch self {
            case .timeout: return "timeout"
            case .rcode(let r): return r.rcodeName
            case .broken(let why): return why
            }
        }

        static func socket(_ operation: String, _ code: Int32) -> ServerFailure {
            code == ECONNREFUSED ? .broken("port unreachable (connection refused)")
                : .broken("\(operation): \(String(cString: strerror(code)))")
        }

        init(_ failure: SocketFailure) {
            switch failure {
            case .timeout: self = .timeout
            case .closedByPeer: self = .broken("TCP connection closed by the server")
            case .system(let operation, let code): self = .socket(operation, code)
            }
        }
    }

    private enum ServerOutcome {
        case answered(DNSResponse)
        case failed(ServerFailure)

        /// NOERROR and NXDOMAIN are answers; any other rcode goes on to the next server.
        init(_ response: DNSResponse) {
            self = response.rcode == DNSResponse.noError || response.rcode == DNSResponse.nameError
                ? .answered(response) : .failed(.rcode(response))
        }
    }

    /// One round trip to one server for several queries: all are sent, then answers are
    /// collected until each has one or the timeout passes.
    private func ask(_ server: Int, _ queries: [DNSQuery]) -> [ServerOutcome] {
        let fd: Int32
        switch udpSocket(server) {
        case .success(let s): fd = s
        case .failure(let failure): return queries.map { _ in .failed(failure) }
        }
        for query in queries where send(fd, query.wire, query.wire.count, 0) < 0 {
            let failure = ServerFailure.socket("send", errno)
            return queries.map { _ in .failed(failure) }
        }
        var outcomes = [ServerOutcome?](repeating: nil, count: queries.count)
        var waiting = Array(queries.indices)
        var truncated: [Int] = []
        let deadline = Deadline(ms: timeoutMs)
        while !waiting.isEmpty && waitFor(POLLIN, on: fd, until: deadline) {
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                let failure = ServerFailure.socket("receive", errno)
                for i in waiting { outcomes[i] = .failed(failure) }
                break
            }
            guard let (k, match) = Self.claim(Array(buffer[0..<n]), for: queries, among: waiting) else { continue }
            let i = waiting.remove(at: k)
            switch match {
            case .truncated: truncated.append(i)
            case .malformed: outcomes[i] = .failed(.broken("malformed answer"))
            case .response(let response): outcomes[i] = ServerOutcome(response)
            case .notOurs: break
            }
        }
        for i in truncated { outcomes[i] = overTCP(server, queries[i]) }
        return outcomes.map { $0 ?? .failed(.timeout) }
    }

    /// The position in `waiting` of the query a datagram answers, and how; nil for a
    /// stray or late datagram.
    private static func claim(_ datagram: [UInt8], for queries: [DNSQuery], among waiting: [Int]) -> (Int, ReplyMatch)? {
        for (k, i) in waiting.enumerated() {
            let match = queries[i].match(datagram)
            if match != .notOurs { return (k, match) }
        }
        return nil
    }

    private func udpSocket(_ server: Int) -> Result<Int32, ServerFailure> {
        if let fd = sockets[server] { return .success(fd) }
        return connectedUDPSocket(to: addresses[server], mark: mark).map { fd in
            sockets[server] = fd
            return fd
        }.mapError(ServerFailure.init)
    }

    // MARK: - TCP, for truncated answers

    /// The same question over a fresh TCP connection, with its own timeoutMs.
    private func overTCP(_ server: Int, _ query: DNSQuery) -> ServerOutcome {
        switch tcpExchange(query.wire, with: addresses[server], mark: mark, until: Deadline(ms: timeoutMs)) {
        case .failure(let failure): return .failed(ServerFailure(failure))
        case .success(let bytes):
            switch query.match(bytes) {
            case .response(let response): return ServerOutcome(response)
            case .notOurs: return .failed(.broken("TCP answer to another question"))
            case .truncated, .malformed: return .failed(.broken("malformed answer over TCP"))
            }
        }
    }

    // MARK: - Reporting

    /// One line for a query that never got an answer. A server's own verdict (SERVFAIL,
    /// REFUSED, ...) is more telling than silence, so it decides the status.
    private func summarize(_ failures: [Int: ServerFailure]) -> Reply {
        let ordered = servers.indices.compactMap { i in failures[i].map { (servers[i], $0) } }
        if ordered.allSatisfy({ $0.1 == .timeout }) {
            let names = ordered.map(\.0.description).joined(separator: ", ")
            let rounds = attempts == 1 ? "1 attempt" : "\(attempts) attempts"
            return .failure(.timeout, "timeout after \(rounds) of \(timeoutMs) ms to \(names)")
        }
        let status = ordered.first { $0.1 != .timeout }?.1.status ?? .error
        return .failure(status, ordered.map { "\($0.0): \($0.1.text)" }.joined(separator: "; "))
    }
}
