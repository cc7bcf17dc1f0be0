import Foundation
import XCTest
import FWTestSupport

/// `fwctl env POLICY`: the variables a sandboxed client gets, and the CA bundle it writes.
final class EnvTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("fwctl-env-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func fwctl(_ args: String...) throws -> ProcessResult { try FWTestSupport.run(Paths.fwctl, args) }

    var caCert: String { dir.appendingPathComponent("pub/ca.pem").path }
    var bundle: String { dir.appendingPathComponent("pub/ca-bundle.pem").path }

    /// Keeps the loader quiet (no "no [[allow]] entries" warning) and sets no variable.
    static let directAllow = "[[allow]]\ncidr = [\"192.0.2.0/24\"]\n"

    /// A policy whose CA lives in the temp dir; `body` follows the [proxy] keys, and a direct
    /// allow comes last (so the indices of `body`'s allows count from 0).
    func policy(listen: String = "127.0.0.1:3128", _ body: String = "", initCA: Bool = true) throws -> String {
        let text = """
        version = 1
        [proxy]
        listen = "\(listen)"
        ca_dir = "\(dir.appendingPathComponent("ca").path)"
        ca_cert = "\(caCert)"
        \(body)
        \(Self.directAllow)
        """
        let path = dir.appendingPathComponent("policy.toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        if initCA {
            let r = try fwctl("ca", "init", path)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        return path
    }

    func standardLines(proxy: String) -> [String] {
        [
            "export HTTP_PROXY='\(proxy)'",
            "export HTTPS_PROXY='\(proxy)'",
            "export http_proxy='\(proxy)'",
            "export https_proxy='\(proxy)'",
            "export NO_PROXY='localhost,127.0.0.1,::1'",
            "export no_proxy='localhost,127.0.0.1,::1'",
            "export NODE_USE_ENV_PROXY='1'",
            "export NODE_EXTRA_CA_CERTS='\(caCert)'",
            "export SSL_CERT_FILE='\(bundle)'",
            "export REQUESTS_CA_BUNDLE='\(bundle)'",
            "export CURL_CA_BUNDLE='\(bundle)'",
            "export GIT_SSL_CAINFO='\(bundle)'",
        ]
    }

    static let fullBody = """
        [[proxy.endpoint]]
        listen = "127.0.0.1:3129"
        target = "https://api.anthropic.com"
        env = "ANTHROPIC_BASE_URL"
        [[proxy.endpoint]]
        listen = "127.0.0.1:3131"
        target = "https://api.example.com"
        [[allow]]
        host = "api.anthropic.com"
        via = "proxy"
        [[allow.inject]]
        header = "x-api-key"
        placeholder = "sk-ant-api03-fwctl-placeholder"
        secret = "env:ANTHROPIC_API_KEY"
        [[allow]]
        host = "api.example.com"
        via = "proxy"
        [[allow.inject]]
        header = "authorization"
        placeholder = "example-fwctl-placeholder"
        secret = "file:/nonexistent/example-key"
        format = "Bearer {}"
        """

    func testShellOutputExactLines() throws {
        let p = try policy(Self.fullBody)
        let r = try fwctl("env", p)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "")
        // The file: inject sets nothing; the endpoint without env neither.
        XCTAssertEqual(r.stdout, (standardLines(proxy: "http://127.0.0.1:3128") + [
            "export ANTHROPIC_API_KEY='sk-ant-api03-fwctl-placeholder'",
            "export ANTHROPIC_BASE_URL='http://127.0.0.1:3129'",
        ]).joined(separator: "\n") + "\n")
        XCTAssertEqual(try fwctl("env", "--format", "sh", p).stdout, r.stdout)
    }

    func testPlaceholderWithSingleQuoteIsQuotedForSh() throws {
        let p = try policy("""
            [[allow]]
            host = "api.anthropic.com"
            via = "proxy"
            [[allow.inject]]
            header = "x-api-key"
            placeholder = "sk-it's-a-placeholder"
            secret = "env:ANTHROPIC_API_KEY"
            """)
        let r = try fwctl("env", p)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.split(separator: "\n").last, #"export ANTHROPIC_API_KEY='sk-it'\''s-a-placeholder'"#)
        // What a shell makes of it is the placeholder, byte for byte.
        let script = dir.appendingPathComponent("env.sh").path
        try r.stdout.write(toFile: script, atomically: true, encoding: .utf8)
        let sh = try FWTestSupport.run("/bin/sh", ["-c", ". \"$0\" && printf %s \"$ANTHROPIC_API_KEY\"", script])
        XCTAssertEqual(sh.status, 0, sh.stderr)
        XCTAssertEqual(sh.stdout, "sk-it's-a-placeholder")
    }

    func testJSONOutput() throws {
        let p = try policy(Self.fullBody)
        let r = try fwctl("env", "--format", "json", p)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: String])
        let proxy = "http://127.0.0.1:3128"
        XCTAssertEqual(obj, [
            "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
            "NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1",
            "NODE_USE_ENV_PROXY": "1",
            "NODE_EXTRA_CA_CERTS": caCert,
            "SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle, "CURL_CA_BUNDLE": bundle, "GIT_SSL_CAINFO": bundle,
            "ANTHROPIC_API_KEY": "sk-ant-api03-fwctl-placeholder",
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:3129",
        ])
        // Keys sorted, so the text is stable.
        let keys = r.stdout.split(separator: "\n").compactMap { line -> String? in
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("\"") else { return nil }
            return String(t.dropFirst().prefix { $0 != "\"" })
        }
        XCTAssertEqual(keys, keys.sorted())
        XCTAssertEqual(keys.count, obj.count)
    }

    func testBundleIsSystemCAsThenFwctlCA() throws {
        let p = try policy()
        XCTAssertFalse(FileManager.default.fileExists(atPath: bundle))
        let r = try fwctl("env", p)
        XCTAssertEqual(r.status, 0, r.stderr)
        let system = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"]
            .first { FileManager.default.fileExists(atPath: $0) }
        var expected = Data()
        if let system {
            expected = try Data(contentsOf: URL(fileURLWithPath: system))
            if expected.last != UInt8(ascii: "\n") { expected.append(UInt8(ascii: "\n")) }
        }
        expected.append(try Data(contentsOf: URL(fileURLWithPath: caCert)))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: bundle)), expected)
        let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: bundle)[.posixPermissions] as? Int)
        XCTAssertEqual(mode, 0o644)
        // No temporary file is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("pub").path).sorted(),
                       ["ca-bundle.pem", "ca.pem"])

        // A bundle with the wrong mode or content is put right on the next run.
        try Data("stale\n".utf8).write(to: URL(fileURLWithPath: bundle))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: bundle)
        XCTAssertEqual(try fwctl("env", p).status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: bundle)), expected)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: bundle)[.posixPermissions] as? Int, 0o644)
    }

    /// An endpoint that is not on loopback (a sidecar) is reached directly: it joins NO_PROXY.
    func testNonLoopbackEndpointIsInNoProxy() throws {
        let path = try policy(listen: "192.0.2.10:3128", """
            [[proxy.endpoint]]
            listen = "192.0.2.10:3129"
            target = "https://api.example.test"
            env = "EXAMPLE_BASE_URL"
            [[proxy.endpoint]]
            listen = "127.0.0.1:3130"
            target = "https://api.example.test"
            """)
        let r = try fwctl("env", path)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("export NO_PROXY='localhost,127.0.0.1,::1,192.0.2.10'"), r.stdout)
        XCTAssertTrue(lines.contains("export no_proxy='localhost,127.0.0.1,::1,192.0.2.10'"), r.stdout)
        XCTAssertTrue(lines.contains("export EXAMPLE_BASE_URL='http://192.0.2.10:3129'"), r.stdout)
    }

    func testIPv6ListenIsBracketed() throws {
        let p = try policy(listen: "[::1]:3128", """
            [[proxy.endpoint]]
            listen = "[::1]:3129"
            target = "https://api.anthropic.com"
            env = "ANTHROPIC_BASE_URL"
            """)
        let r = try fwctl("env", p)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, (standardLines(proxy: "http://[::1]:3128")
            + ["export ANTHROPIC_BASE_URL='http://[::1]:3129'"]).joined(separator: "\n") + "\n")
    }

    func testNoProxySectionIsOneLineExit2() throws {
        let path = dir.appendingPathComponent("policy.toml").path
        try ("version = 1\n" + Self.directAllow).write(toFile: path, atomically: true, encoding: .utf8)
        let r = try fwctl("env", path)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("\(path): no [proxy] section"), r.stderr)
    }

    func testMissingCACertSaysRunCAInit() throws {
        let p = try policy(initCA: false)
        let r = try fwctl("env", p)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr, "\(caCert): no CA certificate yet; run `fwctl ca init \(p)` first\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: bundle))
    }

    func testSameNameTwiceWithDifferentValuesIsExit2() throws {
        let p = try policy("""
            [[allow]]
            host = "a.example.com"
            via = "proxy"
            [[allow.inject]]
            header = "x-api-key"
            placeholder = "placeholder-one"
            secret = "env:SAME_KEY"
            [[allow]]
            host = "b.example.com"
            via = "proxy"
            [[allow.inject]]
            header = "x-api-key"
            placeholder = "placeholder-two"
            secret = "env:SAME_KEY"
            """)
        let r = try fwctl("env", p)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr, "\(p): SAME_KEY is set twice with different values, by allow[0].inject[0] and by allow[1].inject[0]\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: bundle), "nothing is written when the variables conflict")
    }

    func testSameNameTwiceWithTheSameValueIsSetOnce() throws {
        let p = try policy("""
            [[allow]]
            host = "a.example.com"
            via = "proxy"
            [[allow.inject]]
            header = "x-api-key"
            placeholder = "placeholder-one"
            secret = "env:SAME_KEY"
            [[allow.inject]]
            header = "x-other-key"
            placeholder = "placeholder-one"
            secret = "env:SAME_KEY"
            """)
        let r = try fwctl("env", p)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.components(separatedBy: "export SAME_KEY='placeholder-one'\n").count, 2, r.stdout)
    }

    func testUnwritableBundleIsOneLineExit2() throws {
        let p = try policy()
        // A directory where the bundle should go: the rename cannot replace it (root or not).
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: false)
        let r = try fwctl("env", p)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout, "")
        XCTAssertTrue(r.stderr.hasPrefix("\(bundle): cannot "), r.stderr)
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("pub").path).sorted(),
                       ["ca-bundle.pem", "ca.pem"], "no temporary file is left behind")
    }
}
