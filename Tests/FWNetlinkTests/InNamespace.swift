import Foundation
import FWNetlink
import FWTestSupport

/// Carries a result from the namespace thread back to the test.
private final class ResultBox<T>: @unchecked Sendable { var result: Result<T, Error>? }

extension FWTestSupport.NetworkNamespace {
    /// Runs `body` on a fresh thread that has entered this namespace: namespace membership
    /// is per thread, and the test's own threads must stay where they are.
    public func inside<T>(_ body: @escaping () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let path = "/run/netns/\(name)"
        let thread = Thread {
            box.result = Result {
                try FWNetlink.NetworkNamespace.enter(path)
                return try body()
            }
            done.signal()
        }
        thread.start()
        done.wait()
        return try box.result!.get()
    }
}
