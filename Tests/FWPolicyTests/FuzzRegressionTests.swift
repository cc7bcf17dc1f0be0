import Foundation
import XCTest
@testable import FWPolicy

/// What Fuzz/FuzzPolicy found (scripts/fuzz), each as the bytes that did it. Before the
/// fixes, the two table-header and array inputs aborted fwctl (debug and release builds
/// alike), and the NUL made `fwctl check` ignore the rest of the file and then spin, its
/// memory growing, until killed.
final class FuzzRegressionTests: XCTestCase {
    private func diagnostics(_ bytes: [UInt8]) -> [String] {
        let text = String(decoding: bytes, as: UTF8.self)
        do {
            _ = try PolicyReader.parse(text: text, file: "p.toml", baseDirectory: "/nonexistent")
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    private func diagnostics(_ text: String) -> [String] { diagnostics(Array(text.utf8)) }

    // MARK: toml++ aborted on a table header whose key starts with another character

    /// The fuzzer's input, cut to the lines that matter: a stray backquote in "[[allow.inject]]".
    func testBackquoteInArrayTableHeader() {
        let input: [UInt8] = Array("""
            version = 1
            [[allow]]
            host = "api.anthropic.com"
            via = "proxy"

            [[`allow.inject]]                  # key rewriting for this host
            header = "x-api-key"

            """.utf8)
        XCTAssertEqual(diagnostics(input), [
            "p.toml:6:3: TOML syntax error: Error while parsing table header: expected bare key starting character or string delimiter, saw '`'",
        ])
    }

    func testOtherHeadersThatAborted() {
        let cases: [(String, String)] = [
            ("[[[1]]]\n", "p.toml:1:3:"),
            ("version = 1\n[=]\n", "p.toml:2:2:"),
            ("version = 1\n  [ #]\n", "p.toml:2:5:"),
            ("version = 1\n[\n", "p.toml:2:2:"),
            ("version = 1\r\n[\r\n", "p.toml:2:2:"),
            ("[[\t{a]]", "p.toml:1:4:"),
            ("\u{FEFF}[.a]", "p.toml:1:2:"),
        ]
        for (text, location) in cases {
            let d = diagnostics(text)
            XCTAssertEqual(d.count, 1, text.debugDescription)
            XCTAssertTrue(d.first?.hasPrefix(location + " TOML syntax error: Error while parsing table header") ?? false,
                          "\(text.debugDescription): \(d)")
        }
    }

    /// What toml++ handles itself still reaches it, and valid headers in every form parse.
    func testHeadersTomlPlusPlusHandles() {
        // Lines of a multi-line array that start with "[" and then a key character: not refused.
        let nested = diagnostics("version = 1\nx = [\n  [1, 2],\n  [\"a\"],\n  ['b'],\n]\n")
        XCTAssertFalse(nested.isEmpty)
        XCTAssertFalse(nested.contains { $0.contains("TOML syntax") }, "\(nested)")
        XCTAssertEqual(diagnostics("\u{FEFF}version = 1\n\t[ firewall ]\ntable = \"t\"\n[[ allow ]]\nhost = \"a.example\"\n"
                                   + "ports = [\n  443,\n  8443,\n]\n[[\"allow\"]]\n'host' = \"b.example\"\n"), [])
        let contiguous = diagnostics("version = 1\n[ [allow]]\n")
        XCTAssertEqual(contiguous.count, 1)
        XCTAssertTrue(contiguous.first?.contains("must be contiguous") ?? false, "\(contiguous)")
        let blank = diagnostics("version = 1\n[]\n")
        XCTAssertTrue(blank.first?.contains("blank bare keys") ?? false, "\(blank)")
    }

    // MARK: toml++ aborted on an array element that starts with "}"

    /// The fuzzer's input, cut to the lines that matter.
    func testBraceWhereAnArrayElementStarts() {
        let input: [UInt8] = Array("""
            version = 1
            [[allow]]
            host = "*.exa&mple.org"
            ports = [80,}443]
            proto = "udp"

            """.utf8)
        XCTAssertEqual(diagnostics(input), [
            "p.toml:4:13: TOML syntax error: Error while parsing array: expected value or closing ']', saw '}'",
        ])
        for text in ["a = [}\n", "a = [\n  # c\n  }\n]\n", "a = [1,\u{2028}2]\n", "a = [[\u{85}]]\n"] {
            let d = diagnostics(text)
            XCTAssertEqual(d.count, 1, text.debugDescription)
            XCTAssertTrue(d.first?.contains("Error while parsing array") ?? false, "\(text.debugDescription): \(d)")
        }
        // In strings and comments they are text, as toml++ reads them.
        let strings = diagnostics("version = 1\na = [\"[}\", ',}', \"\"\"x[,}\n  , }\"\"\"] # [,}\n")
        XCTAssertFalse(strings.isEmpty)
        XCTAssertFalse(strings.contains { $0.contains("TOML syntax") }, "\(strings)")
    }

    // MARK: a NUL hid the rest of the file from the TOML parser

    /// The fuzzer's input, cut: toml++ got the text as a C string and read only up to the
    /// NUL in the comment, so everything after it was ignored (and the source locator then
    /// looped on it, below).
    func testNULIsASyntaxError() {
        var input = Array("version = 1\n[dns]\nservers = [\"127.0.0.11\"]          # the only resolver reachable (Docker's embedd#".utf8)
        input += [0x00]
        input += Array("ed DNS)\n[[allow]]\nhost = \"a.example\"\nvia = \"nowhere\"\n".utf8)
        XCTAssertEqual(diagnostics(input), [
            "p.toml:3:82: TOML syntax error: a NUL character (U+0000), which TOML does not allow anywhere",
        ])
        XCTAssertEqual(diagnostics([0x00]).count, 1)
    }

    // MARK: the source locator looped on text it cannot read

    /// The locator is not a parser; text it cannot read (here: what followed the NUL above,
    /// as toml++ never saw it) must be stepped over, not read forever.
    func testLocatorStepsOverWhatItCannotRead() {
        let texts = [
            "version = 2\n#\u{0}\nx = [ } ]\n",
            "version = 2\n#\u{0}\nx = { # }\n",
            "ca_cert = \"/etc/  # HTTP\nuser = \"fwproxy\"\npaths = [\"/v1/messag }\n[[allow.inject]]\nheader = \"x\"\n",
            "a = [ { b = [ } ], } ]\nc = { ] = 1 }\n",
        ]
        for text in texts {
            let done = DispatchSemaphore(value: 0)
            Thread {
                _ = SourceLocator(text: text).valueLocation(KeyPath([.key("x")]))
                done.signal()
            }.start()
            XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "the locator does not finish on \(text.debugDescription)")
        }
    }
}
