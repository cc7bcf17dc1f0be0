import Foundation
import FWPolicy
#if canImport(Glibc)
import Glibc
#endif

/// Where the CLI writes: results to stdout, diagnostics and progress to stderr.
enum Output {
    static let stderrIsTerminal = isatty(2) == 1

    static func error(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

    static func diagnostics(_ ds: [Diagnostic]) { for d in ds { error(d.description) } }

    /// A progress line that rewrites itself on a terminal and stays silent elsewhere.
    static func progress(_ text: String) {
        guard stderrIsTerminal else { return }
        FileHandle.standardError.write(Data("\r\u{1b}[K\(text)".utf8))
    }

    static func endProgress() {
        guard stderrIsTerminal else { return }
        FileHandle.standardError.write(Data("\r\u{1b}[K".utf8))
    }
}
