import Foundation

/// Resolves many names at once: a fixed pool of worker threads, each with its own
/// sockets, takes names from a shared board, so nothing is shared per query and the
/// number of threads never exceeds `parallelism`.
public struct Resolver: Sendable {
    public let options: ResolverOptions

    public init(options: ResolverOptions) {
        self.options = options
    }

    /// Resolves A and AAAA for every name; many in flight at once (bounded by
    /// parallelism). Names are normalized (lower case, no trailing dot) and each distinct
    /// name is resolved once. `progress(done, total)` is called as names finish, from any
    /// thread, one call at a time.
    public func resolve(_ names: [String], progress: (@Sendable (Int, Int) -> Void)? = nil) -> Resolution {
        let unique = Array(Set(names.map(DNSName.normalize))).sorted()
        guard !unique.isEmpty else { return Resolution(results: []) }
        let board = WorkBoard(names: unique, progress: progress)
        let finished = DispatchGroup()
        for _ in 0..<min(max(1, options.parallelism), unique.count) {
            finished.enter()
            let worker = Thread { [options] in
                Self.work(on: board, options: options)
                finished.leave()
            }
            // Workers only block in poll(); the default 8 MiB stack is far more than needed.
            worker.stackSize = 512 * 1024
            worker.start()
        }
        finished.wait()
        return Resolution(results: board.results)
    }

    private static func work(on board: WorkBoard, options: ResolverOptions) {
        let transport = Transport(options: options)
        while let (index, name) = board.take() {
            board.finish(index, resolveName(name, via: transport))
        }
    }

    /// A and AAAA for one name, asked together; a family whose answer stops at a CNAME
    /// target without addresses asks again for the target.
    static func resolveName(_ name: String, via transport: Transport) -> NameResolution {
        var lookups = RecordType.allCases.map { FamilyLookup(name: name, type: $0) }
        var outcomes = [FamilyOutcome?](repeating: nil, count: lookups.count)
        while true {
            let open = lookups.indices.filter { outcomes[$0] == nil }
            if open.isEmpty { break }
            var queries: [DNSQuery] = []
            var asked: [Int] = []
            for i in open {
                if let query = DNSQuery(name: lookups[i].current, type: lookups[i].type) {
                    queries.append(query)
                    asked.append(i)
                } else {
                    outcomes[i] = .failure(.error, "\"\(lookups[i].current)\" is not a valid DNS name")
                }
            }
            for (i, reply) in zip(asked, transport.exchange(queries)) {
                switch reply {
                case .response(let response): outcomes[i] = lookups[i].absorb(response)
                case .failure(let status, let text): outcomes[i] = .failure(status, text)
                }
            }
        }
        let final = outcomes.map { $0 ?? .failure(.error, "no outcome") }
        return NameResolution(name: name, a: final[0], aaaa: final[1])
    }
}

/// The names still to do and the results so far, shared by the workers under one lock.
private final class WorkBoard: @unchecked Sendable {
    private let lock = NSLock()
    private let names: [String]
    private let progress: (@Sendable (Int, Int) -> Void)?
    private var next = 0
    private var done = 0
    private var slots: [NameResolution?]

    init(names: [String], progress: (@Sendable (Int, Int) -> Void)?) {
        self.names = names
        self.progress = progress
        self.slots = Array(repeating: nil, count: names.count)
    }

    func take() -> (Int, String)? {
        lock.lock()
        defer { lock.unlock() }
        guard next < names.count else { return nil }
        next += 1
        return (next - 1, names[next - 1])
    }

    /// Reports progress under the lock so the calls arrive in order and never overlap.
    func finish(_ index: Int, _ result: NameResolution) {
        lock.lock()
        defer { lock.unlock() }
        slots[index] = result
        done += 1
        progress?(done, names.count)
    }

    /// Read after every worker has left.
    var results: [NameResolution] {
        lock.lock()
        defer { lock.unlock() }
        return slots.compactMap { $0 }
    }
}
