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
        // 128 MiB in blocks below the mmap threshold, so they come from the heap, touched so
        // they are resident. Every other one is freed: the ones kept between them stop the
        // freed ones from joining the heap's top, which glibc would shrink by itself, so
        // only a trim can give their pages back (in a test process that has run others, a
        // single block kept after them could land anywhere).
        let size = 32 * 1024
        let blocks = (0..<4096).map { _ -> UnsafeMutableRawPointer in
            let p = malloc(size)!
            memset(p, 1, size)
            return p
        }
        defer { for (i, p) in blocks.enumerated() where i % 2 == 1 { free(p) } }
        for (i, p) in blocks.enumerated() where i % 2 == 0 { free(p) }
        let before = resident()
        HeapTrimmer.trimNow()
        let after = resident()
        XCTAssertGreaterThan(before - after, 32 * 1024 * 1024,
                             "resident \(before >> 20) MiB before the trim, \(after >> 20) MiB after")
    }
}
