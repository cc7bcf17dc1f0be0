import Foundation
import XCTest
import FWPolicy
import FWTestSupport

final class SHA256Tests: XCTestCase {
    func testKnownVectors() {
        XCTAssertEqual(SHA256.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    /// Agrees with coreutils on every bundled policy (lengths around block boundaries included).
    func testAgreesWithSha256sum() throws {
        let sum = try tool("sha256sum")
        let files = ["claude-code.toml", "strict.toml", "github-meta.json"].map(Paths.policies)
        for f in files {
            let expected = try FWTestSupport.run(sum, [f]).stdout.split(separator: " ")[0]
            let data = try Data(contentsOf: URL(fileURLWithPath: f))
            XCTAssertEqual(SHA256.hex(data), String(expected), f)
        }
        for n in [55, 56, 63, 64, 65, 119, 120, 1000] {
            let bytes = [UInt8](repeating: 0x61, count: n)
            let expected = try FWTestSupport.run(sum, ["-"], input: String(repeating: "a", count: n)).stdout.split(separator: " ")[0]
            XCTAssertEqual(SHA256.hex(bytes), String(expected), "\(n) bytes")
        }
    }
}
