import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Gives freed heap back to the kernel every `interval`, with glibc's malloc_trim.
///
/// glibc keeps what a connection freed for the next allocation and returns little of it on
/// its own; under tunnel churn the proxy's resident memory then followed the high-water mark
/// of every burst and crept up for as long as the load lasted, although the live heap went
/// back to under 2 MiB whenever the load stopped (bench/soak/proxy; BENCHMARKS.md, Soak). A
/// trim walks the allocator's arenas and takes milliseconds, on a utility queue. Where the
/// C library has no malloc_trim (musl), this does nothing.
final class HeapTrimmer: @unchecked Sendable {
    private typealias Trim = @convention(c) (Int) -> Int32
    private static let trim: Trim? = {
        // RTLD_DEFAULT is a null handle in glibc: any loaded object.
        guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: Trim.self)
    }()

    static let interval = DispatchTimeInterval.seconds(15)

    private let timer: DispatchSourceTimer?

    init(interval: DispatchTimeInterval = HeapTrimmer.interval) {
        guard let trim = Self.trim else { timer = nil; return }
        let t = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        t.schedule(deadline: .now() + interval, repeating: interval, leeway: .seconds(1))
        t.setEventHandler { _ = trim(0) }
        t.resume()
        timer = t
    }

    /// Whether this C library can trim at all.
    static var isAvailable: Bool { trim != nil }

    /// Trims once, now (also what the timer does).
    static func trimNow() { _ = trim?(0) }

    func stop() { timer?.cancel() }

    deinit { timer?.cancel() }
}
