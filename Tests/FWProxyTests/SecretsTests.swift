import XCTest
import Foundation
import FWPolicy
@testable import FWProxy

/// Secret values here are fakes, but the tests treat them as real: no assertion prints one
/// (comparisons go through `same`, which reports a mismatch without showing values).
final class SecretsTests: XCTestCase {
    static let fake = "sk-test-REALSECRET-123"
    static let fake2 = "sk-test-REALSECRET-456-rotated"
    static let placeholder = "sk-fwctl-placeholder-0001"

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("fwctl-secrets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func policy(secret: String, header: String = "x-api-key", format: String = "{}") -> Policy {
        RulesFixture.policy("""
            [[allow]]
            host = "api.example.test"
            via = "proxy"

            [[allow.inject]]
            header = "\(header)"
            placeholder = "\(Self.placeholder)"
            secret = "\(secret)"
            format = "\(format)"
            """)
    }

    private func entry(_ p: Policy) -> ProxyEntry { ProxyRules(policy: p).entries[0] }

    /// Equality without printing either side.
    private func same(_ a: [(String, String)], _ b: [(String, String)], _ what: String,
                      file: StaticString = #filePath, line: UInt = #line) {
        let equal = a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        XCTAssertTrue(equal, "\(what): headers differ (values not shown)", file: file, line: line)
    }

    private func rewritten(_ injector: Injector, _ headers: [(String, String)]) -> [(String, String)]? {
        if case .success(let h) = injector.rewrite(headers) { return h }
        return nil
    }

    private func refusal(_ injector: Injector, _ headers: [(String, String)]) -> Refusal? {
        if case .failure(let r) = injector.rewrite(headers) { return r }
        return nil
    }

    /// `text` must not hold any fake secret.
    private func clean(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        for s in [Self.fake, Self.fake2] {
            XCTAssertFalse(text.contains(s), "\(what) shows a secret value", file: file, line: line)
        }
    }

    private func write(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    // MARK: SecretStore

    func testEnvSource() throws {
        let p = policy(secret: "env:FWCTL_TEST_KEY", header: "authorization", format: "Bearer {}")
        let store = try SecretStore(policy: p, environment: ["FWCTL_TEST_KEY": Self.fake])
        XCTAssertEqual(store.count, 1)
        let out = rewritten(Injector(entry: entry(p), secrets: store), [("Authorization", Self.placeholder)])
        same(out ?? [], [("Authorization", "Bearer " + Self.fake)], "env secret injected")
    }

    func testFileSourceTrimmed() throws {
        let path = try write("key", "  \(Self.fake)\r\n\n")
        let p = policy(secret: "file:\(path)")
        let store = try SecretStore(policy: p, environment: [:])
        let out = rewritten(Injector(entry: entry(p), secrets: store), [("x-api-key", Self.placeholder)])
        same(out ?? [], [("x-api-key", Self.fake)], "file secret injected, white space trimmed")
    }

    func testMissingEnvNamesTheInjectAndSource() {
        let p = policy(secret: "env:FWCTL_TEST_MISSING")
        XCTAssertThrowsError(try SecretStore(policy: p, environment: ["OTHER": Self.fake])) { error in
            let text = String(describing: error)
            XCTAssertEqual(text, "allow[0].inject[0] (header \"x-api-key\"): secret env:FWCTL_TEST_MISSING is not set")
            XCTAssertTrue(error is SecretError)
            clean(text, "error")
        }
    }

    func testMissingFileNamesTheInjectAndSource() {
        let path = dir.appendingPathComponent("absent").path
        let p = policy(secret: "file:\(path)")
        XCTAssertThrowsError(try SecretStore(policy: p, environment: [:])) { error in
            XCTAssertEqual(String(describing: error),
                           "allow[0].inject[0] (header \"x-api-key\"): secret file:\(path) cannot be read: No such file or directory")
        }
    }

    func testDirectoryIsNotASecretFile() {
        let p = policy(secret: "file:\(dir.path)")
        XCTAssertThrowsError(try SecretStore(policy: p, environment: [:])) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.hasPrefix("allow[0].inject[0] (header \"x-api-key\"): secret file:\(dir.path) cannot be read"), text)
        }
    }

    func testBadValuesFailWithoutShowingThem() throws {
        // A value with a line break would split the header: refused, and not shown.
        let path = try write("two-lines", "\(Self.fake)\nX-Evil: \(Self.fake2)\n")
        let p = policy(secret: "file:\(path)")
        XCTAssertThrowsError(try SecretStore(policy: p, environment: [:])) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("allow[0].inject[0]") && text.contains("file:\(path)") && text.contains("control character"), text)
            clean(text, "error")
            clean(String(reflecting: error), "error (reflecting)")
            clean(error.localizedDescription, "error (localized)")
        }
        let empty = policy(secret: "env:FWCTL_TEST_EMPTY")
        XCTAssertThrowsError(try SecretStore(policy: empty, environment: ["FWCTL_TEST_EMPTY": " \n"])) { error in
            XCTAssertTrue(String(describing: error).hasSuffix("secret env:FWCTL_TEST_EMPTY is empty"))
        }
    }

    func testEveryFailureIsNamed() {
        let p = RulesFixture.policy("""
            [[allow]]
            host = "a.example.test"
            via = "proxy"
            [[allow.inject]]
            header = "x-api-key"
            placeholder = "placeholder-a-0001"
            secret = "env:FWCTL_A"
            [[allow.inject]]
            header = "x-other"
            placeholder = "placeholder-b-0001"
            secret = "env:FWCTL_B"

            [[allow]]
            host = "b.example.test"
            via = "proxy"
            [[allow.inject]]
            header = "authorization"
            placeholder = "placeholder-c-0001"
            secret = "env:FWCTL_A"
            """)
        XCTAssertThrowsError(try SecretStore(policy: p, environment: ["FWCTL_B": Self.fake])) { error in
            XCTAssertEqual((error as? SecretError)?.problems, [
                "allow[0].inject[0] (header \"x-api-key\"): secret env:FWCTL_A is not set",
                "allow[1].inject[0] (header \"authorization\"): secret env:FWCTL_A is not set",
            ])
            clean(String(describing: error), "error")
        }
    }

    func testNoSecretInDescriptions() throws {
        let path = try write("key", Self.fake)
        let p = RulesFixture.policy("""
            [[allow]]
            host = "api.example.test"
            via = "proxy"
            [[allow.inject]]
            header = "x-api-key"
            placeholder = "\(Self.placeholder)"
            secret = "file:\(path)"
            [[allow.inject]]
            header = "authorization"
            placeholder = "sk-fwctl-placeholder-0002"
            secret = "env:FWCTL_TEST_KEY"
            format = "Bearer {}"
            """)
        let store = try SecretStore(policy: p, environment: ["FWCTL_TEST_KEY": Self.fake2])
        let injector = Injector(entry: entry(p), secrets: store)
        var scrubber = store.makeScrubber()
        _ = scrubber.feed(Array("partial sk-test-REAL".utf8))
        let things: [(String, Any)] = [("store", store), ("injector", injector), ("scrubber", scrubber)]
        for (what, thing) in things {
            clean(String(describing: thing), "\(what) description")
            clean(String(reflecting: thing), "\(what) debugDescription")
            var dumped = ""
            dump(thing, to: &dumped)
            clean(dumped, "\(what) dump")
            clean("\(thing)", "\(what) interpolation")
        }
        XCTAssertEqual(store.description, "SecretStore(2 inject(s): file:\(path), env:FWCTL_TEST_KEY)")
    }

    func testReloadPicksUpChangedFile() throws {
        let path = try write("key", Self.fake + "\n")
        let p = policy(secret: "file:\(path)")
        let store = try SecretStore(policy: p, environment: [:])
        let injector = Injector(entry: entry(p), secrets: store)
        same(rewritten(injector, [("x-api-key", Self.placeholder)]) ?? [], [("x-api-key", Self.fake)], "before reload")
        XCTAssertEqual(store.version, 0)

        _ = try write("key", Self.fake2 + "\n")
        try store.reload()
        XCTAssertEqual(store.version, 1)
        same(rewritten(injector, [("x-api-key", Self.placeholder)]) ?? [], [("x-api-key", Self.fake2)], "after reload")
        XCTAssertEqual(Scrubber.scrub("echo \(Self.fake2)", pairs: store.scrubPairs) == "echo \(Self.placeholder)", true)

        // A failed reload keeps the old values and names the source.
        try FileManager.default.removeItem(atPath: path)
        XCTAssertThrowsError(try store.reload()) { error in
            XCTAssertTrue(String(describing: error).contains("file:\(path) cannot be read"))
        }
        XCTAssertEqual(store.version, 1)
        same(rewritten(injector, [("x-api-key", Self.placeholder)]) ?? [], [("x-api-key", Self.fake2)], "after failed reload")
    }

    func testScrubPairsLongestFirstOnePerSecret() throws {
        let p = RulesFixture.policy("""
            [[allow]]
            host = "a.example.test"
            via = "proxy"
            [[allow.inject]]
            header = "x-api-key"
            placeholder = "placeholder-short"
            secret = "env:SHORT"
            [[allow.inject]]
            header = "x-other"
            placeholder = "placeholder-long"
            secret = "env:LONG"
            [[allow.inject]]
            header = "x-third"
            placeholder = "placeholder-same"
            secret = "env:SAME_AS_SHORT"
            """)
        let store = try SecretStore(policy: p, environment: ["SHORT": Self.fake, "LONG": Self.fake2, "SAME_AS_SHORT": Self.fake])
        let pairs = store.scrubPairs
        XCTAssertEqual(pairs.map { String(decoding: $0.placeholder, as: UTF8.self) }, ["placeholder-long", "placeholder-short"])
        XCTAssertTrue(store.scrub("a \(Self.fake) b \(Self.fake2)") == "a placeholder-short b placeholder-long")
    }

    // MARK: Injector

    private func injector(format: String = "{}", header: String = "x-api-key") throws -> Injector {
        let p = policy(secret: "env:FWCTL_TEST_KEY", header: header, format: format)
        return Injector(entry: entry(p), secrets: try SecretStore(policy: p, environment: ["FWCTL_TEST_KEY": Self.fake]))
    }

    func testExactPlaceholderReplacedWithFormat() throws {
        let inj = try injector(format: "Bearer {}", header: "authorization")
        let headers = [("Host", "api.example.test"), ("Authorization", Self.placeholder), ("Accept", "*/*")]
        same(rewritten(inj, headers) ?? [],
             [("Host", "api.example.test"), ("Authorization", "Bearer " + Self.fake), ("Accept", "*/*")],
             "in place, order kept, others untouched")
    }

    func testWrongValueRefused() throws {
        let inj = try injector()
        for wrong in ["sk-other", Self.placeholder + " ", "Bearer " + Self.placeholder, "", Self.fake] {
            let r = refusal(inj, [("x-api-key", wrong)])
            XCTAssertEqual(r?.kind, .placeholderMismatch)
            XCTAssertEqual(r?.status, 403)
            XCTAssertEqual(r?.reason, "header x-api-key does not carry the placeholder of allow[0].inject[0] (the value is not shown)")
            clean(r?.reason ?? "", "refusal")
        }
    }

    func testMissingHeaderRefused() throws {
        let r = refusal(try injector(), [("Host", "api.example.test")])
        XCTAssertEqual(r?.kind, .placeholderMismatch)
        XCTAssertEqual(r?.status, 403)
        XCTAssertEqual(r?.reason, "header x-api-key is missing; it must carry the placeholder of allow[0].inject[0]")
    }

    func testPlaceholderInAnotherHeaderRefused() throws {
        let r = refusal(try injector(), [("Authorization", Self.placeholder), ("x-api-key-2", Self.placeholder)])
        XCTAssertEqual(r?.kind, .placeholderMismatch)
        XCTAssertEqual(r?.status, 403)
    }

    func testHeaderNameCaseInsensitive() throws {
        let inj = try injector()
        for name in ["X-API-KEY", "X-Api-Key", "x-api-key"] {
            same(rewritten(inj, [(name, Self.placeholder)]) ?? [], [(name, Self.fake)], name)
        }
    }

    func testDuplicateHeaderRefused() throws {
        let r = refusal(try injector(), [("x-api-key", Self.placeholder), ("X-Api-Key", Self.placeholder)])
        XCTAssertEqual(r?.kind, .placeholderMismatch)
        XCTAssertEqual(r?.reason, "header x-api-key is sent 2 times; it must be sent once, with the placeholder of allow[0].inject[0]")
    }

    func testEntryWithoutInjectLeavesHeaders() throws {
        let p = RulesFixture.policy("""
            [[allow]]
            host = "api.example.test"
            via = "proxy"
            methods = ["GET"]
            """)
        let inj = Injector(entry: entry(p), secrets: try SecretStore(policy: p, environment: [:]))
        XCTAssertTrue(inj.isEmpty)
        same(rewritten(inj, [("x-api-key", "anything")]) ?? [], [("x-api-key", "anything")], "untouched")
    }
}
