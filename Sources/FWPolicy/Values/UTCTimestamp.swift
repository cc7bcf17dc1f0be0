#if canImport(Glibc)
import Glibc
#endif

/// "2026-11-29T18:53:31Z", for the apply record and the access log. strftime, not
/// ISO8601DateFormatter, which loads ICU's data (milliseconds on every call site's first use).
public enum UTCTimestamp {
    public static func now() -> String {
        var t = time(nil)
        var parts = tm()
        gmtime_r(&t, &parts)
        var buf = [CChar](repeating: 0, count: 32)
        let n = strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
