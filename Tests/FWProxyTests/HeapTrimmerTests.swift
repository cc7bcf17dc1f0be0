import Foundation
import XCTest
@testable import FWProxy

/// The proxy's heap trimmer really gives freed memory back: without it, glibc keeps what a
/// burst of connections freed (BENCHMARKS.md, Soak).
final class HeapTrimmerTests: XCTestCase {
    /// Resident pages of this process, in bytes.
    func resident() -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        let pages = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    func testFreedMemoryGoesBackToTheKernel() throws {
        try XCTSkipUnless(HeapTrimmer.isAvailable, "this C library has no malloc_trim")
        // Under scripts/sanitize, ASan's or TSan's allocator serves malloc, and glibc's trim
        // has nothing of it to give back.
        try XCTSkipIf(dlsym(nil, "__asan_init") != nil || dlsym(nil, "__tsan_init") != nil,
                      "a sanitizer's allocator replaces glibc's")
        // 64 MiB in blocks below the mmap threshold, so they come from the heap, touched so
        // they are resident; a small block after them keeps the heap's top from shrinking
        // by itself when they are freed.
        let blocks = (0..<2048).map { _ -> UnsafeMutableRawPointer in
            let p = malloc(32 * 1024)!
            memset(p, 1, 32 * 1024)
            return p
        }
        let pin = malloc(64)!
        defer { free(pin) }
        for p in blocks { free(p) }
        let before = resident()
        HeapTrimmer.trimNow()
        let after = resident()
        XCTAssertGreaterThan(before - after, 32 * 1024 * 1024,
                             "resident \(before >> 20) MiB before the trim, \(after >> 20) MiB after")
    }
}
