import Crypto
import Foundation
import FWProxy
import FWTestSupport
import X509
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The proxy CA: files, modes and owners, the certificates as openssl sees them, leaves.
final class CATests: XCTestCase {
    var dir: URL!
    var caDir: String { dir.appendingPathComponent("state/ca").path }
    var caCert: String { dir.appendingPathComponent("etc/fwctl/ca.pem").path }
    var keyPath: String { caDir + "/ca.key" }
    var pemPath: String { caDir + "/ca.pem" }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("fwctl-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func stat(_ path: String) throws -> Glibc.stat {
        var st = Glibc.stat()
        guard lstat(path, &st) == 0 else { throw CAError(path, "stat failed") }
        return st
    }

    func mode(_ path: String) throws -> mode_t { try stat(path).st_mode & 0o7777 }
    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func initCA(owner: (uid: uid_t, gid: gid_t)? = nil) throws -> (authority: CertificateAuthority, created: Bool) {
        try CertificateAuthority.initialize(caDir: caDir, caCert: caCert, owner: owner)
    }

    func writeLeaf(_ leaf: CertificateAuthority.Leaf) throws -> String {
        let path = dir.appendingPathComponent("leaf.pem").path
        try (leaf.certificate.serializeAsPEM().pemString + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: - Files

    func testInitCreatesFilesWithModesAndIsIdempotent() throws {
        let first = try initCA()
        XCTAssertTrue(first.created)
        XCTAssertEqual(try mode(caDir), 0o700)
        XCTAssertEqual(try mode(keyPath), 0o600)
        XCTAssertEqual(try mode(caCert), 0o644)
        XCTAssertEqual(try mode(dir.appendingPathComponent("etc/fwctl").path), 0o755)
        XCTAssertEqual(try bytes(caCert), try bytes(pemPath))
        XCTAssertTrue(String(decoding: try bytes(keyPath), as: UTF8.self).hasPrefix("-----BEGIN PRIVATE KEY-----"))

        let key = try bytes(keyPath), pem = try bytes(pemPath)
        let second = try initCA()
        XCTAssertFalse(second.created)
        XCTAssertEqual(try bytes(keyPath), key)
        XCTAssertEqual(try bytes(pemPath), pem)
        XCTAssertEqual(try bytes(caCert), pem)
        XCTAssertEqual(second.authority.certificate, first.authority.certificate)

        // A lost public copy is written again, from the same CA.
        try FileManager.default.removeItem(atPath: caCert)
        XCTAssertFalse(try initCA().created)
        XCTAssertEqual(try bytes(caCert), pem)

        XCTAssertEqual(try CertificateAuthority.load(caDir: caDir).certificate, first.authority.certificate)
    }

    func testOwnerGetsKeyAndDirectoryWhenRoot() throws {
        guard getuid() == 0 else { throw XCTSkip("chown needs root") }
        _ = try initCA(owner: (65534, 65534))
        for path in [caDir, keyPath] {
            let st = try stat(path)
            XCTAssertEqual(st.st_uid, 65534, path)
            XCTAssertEqual(st.st_gid, 65534, path)
        }
        XCTAssertEqual(try stat(caCert).st_uid, 0, "the public copy stays with its writer")

        // A CA made without an owner is handed over by a later init with one.
        try FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        _ = try initCA()
        XCTAssertEqual(try stat(keyPath).st_uid, 0)
        XCTAssertFalse(try initCA(owner: (65534, 65534)).created)
        XCTAssertEqual(try stat(keyPath).st_uid, 65534)
        XCTAssertEqual(try stat(caDir).st_uid, 65534)
    }

    /// ca_dir belongs to the proxy user, who could put a symlink where the key was: root's
    /// init must not follow it and give the target away.
    func testSymlinkedKeyIsRefusedNotFollowed() throws {
        guard getuid() == 0 else { throw XCTSkip("chown needs root") }
        _ = try initCA(owner: (65534, 65534))
        let victim = dir.appendingPathComponent("victim").path
        try "root's file\n".write(toFile: victim, atomically: true, encoding: .utf8)
        chmod(victim, 0o600)
        let key = try String(contentsOfFile: keyPath, encoding: .utf8)
        try FileManager.default.moveItem(atPath: keyPath, toPath: keyPath + ".real")
        try FileManager.default.createSymbolicLink(atPath: keyPath, withDestinationPath: keyPath + ".real")
        XCTAssertThrowsError(try initCA(owner: (65534, 65534)), "a symlinked key is an error")
        try FileManager.default.removeItem(atPath: keyPath)
        try FileManager.default.createSymbolicLink(atPath: keyPath, withDestinationPath: victim)
        XCTAssertThrowsError(try initCA(owner: (65534, 65534)))
        XCTAssertEqual(try stat(victim).st_uid, 0, "the symlink's target was not given away")
        XCTAssertEqual(try stat(victim).st_mode & 0o777, 0o600)
        XCTAssertFalse(key.isEmpty)
    }

    func testPartialOrMismatchedStateIsAClearError() throws {
        _ = try initCA()
        let key = try bytes(keyPath)
        let keyBody = String(decoding: key, as: UTF8.self).split(separator: "\n")[1]

        func expectError(_ contains: [String], file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try initCA(), file: file, line: line) { error in
                let text = "\(error)"
                XCTAssertTrue(error is CAError, file: file, line: line)
                XCTAssertFalse(text.contains("\n"), text, file: file, line: line)
                XCTAssertFalse(text.contains(keyBody), "key material in an error", file: file, line: line)
                for c in contains { XCTAssertTrue(text.contains(c), "\(text) lacks \(c)", file: file, line: line) }
            }
        }

        // Key without certificate: never replaced.
        let pem = try bytes(pemPath)
        try FileManager.default.removeItem(atPath: pemPath)
        expectError([pemPath, "missing", "refusing to replace a key"])
        XCTAssertEqual(try bytes(keyPath), key)

        // Certificate of another CA.
        let other = dir.appendingPathComponent("other").path
        _ = try CertificateAuthority.initialize(caDir: other, caCert: other + "/copy.pem", owner: nil)
        try FileManager.default.copyItem(atPath: other + "/ca.pem", toPath: pemPath)
        expectError([pemPath, "does not belong to \(keyPath)"])
        XCTAssertEqual(try bytes(keyPath), key)

        // Certificate without key.
        try FileManager.default.removeItem(atPath: pemPath)
        try pem.write(to: URL(fileURLWithPath: pemPath))
        try FileManager.default.removeItem(atPath: keyPath)
        expectError([keyPath, "missing"])

        // Not a key at all.
        try Data("nonsense\n".utf8).write(to: URL(fileURLWithPath: keyPath))
        expectError([keyPath, "not a PEM ECDSA P-256 private key"])

        XCTAssertThrowsError(try CertificateAuthority.load(caDir: dir.appendingPathComponent("none").path)) { error in
            XCTAssertTrue("\(error)".hasSuffix("none/ca.key: cannot read: no such file or directory; run `fwctl ca init POLICY` first"), "\(error)")
        }
    }

    // MARK: - Certificates, as openssl sees them

    func testCACertificateExtensions() throws {
        let openssl = try tool("openssl")
        _ = try initCA()
        let r = try FWTestSupport.run(openssl, ["x509", "-in", caCert, "-noout", "-text"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for s in ["CA:TRUE, pathlen:0", "Certificate Sign, CRL Sign", "X509v3 Subject Key Identifier",
                  "prime256v1", "ecdsa-with-SHA256", "Subject: O = fwctl, CN = fwctl sandbox CA "] {
            XCTAssertTrue(r.stdout.contains(s), "missing \(s) in\n\(r.stdout)")
        }
        XCTAssertTrue(r.stdout.contains("X509v3 Basic Constraints: critical"), r.stdout)
        XCTAssertTrue(r.stdout.contains("X509v3 Key Usage: critical"), r.stdout)
        let key = try FWTestSupport.run(openssl, ["pkey", "-in", keyPath, "-noout"])
        XCTAssertEqual(key.status, 0, key.stderr)
    }

    func testLeafVerifiesAgainstCA() throws {
        let openssl = try tool("openssl")
        let ca = try initCA().authority
        let now = Date()
        let leaf = try ca.leaf(for: "API.Example.test.", now: now)
        let path = try writeLeaf(leaf)

        let v = try FWTestSupport.run(openssl, ["verify", "-CAfile", pemPath, "-purpose", "sslserver",
                                  "-verify_hostname", "api.example.test", path])
        XCTAssertEqual(v.status, 0, v.stdout + v.stderr)
        XCTAssertEqual(v.stdout, "\(path): OK\n")
        let wrong = try FWTestSupport.run(openssl, ["verify", "-CAfile", pemPath, "-verify_hostname", "other.example.test", path])
        XCTAssertNotEqual(wrong.status, 0)

        let t = try FWTestSupport.run(openssl, ["x509", "-in", path, "-noout", "-text"])
        for s in ["DNS:api.example.test", "CA:FALSE", "TLS Web Server Authentication", "Digital Signature",
                  "X509v3 Authority Key Identifier", "prime256v1"] {
            XCTAssertTrue(t.stdout.contains(s), "missing \(s) in\n\(t.stdout)")
        }

        XCTAssertEqual(leaf.certificate.notValidAfter.timeIntervalSince(now), 24 * 3600, accuracy: 2)
        XCTAssertEqual(now.timeIntervalSince(leaf.certificate.notValidBefore), 300, accuracy: 2)
        XCTAssertEqual(try leaf.certificate.extensions.basicConstraints, .notCertificateAuthority)
        XCTAssertEqual(Certificate.PublicKey(leaf.privateKey.publicKey), leaf.certificate.publicKey)
        XCTAssertEqual(leaf.certificateChain, [leaf.certificate])
        // The NIOSSL form is the same certificate.
        XCTAssertEqual(leaf.sslCertificateChain.count, 1)
        let der = try leaf.sslCertificateChain[0].toDERBytes()
        XCTAssertEqual(try Certificate(derEncoded: der), leaf.certificate)
    }

    func testLeavesAreCachedPerHostAndRenewedBeforeExpiry() throws {
        let ca = try initCA().authority
        let now = Date()
        let a = try ca.leaf(for: "a.example.test", now: now)
        XCTAssertEqual(try ca.leaf(for: "A.EXAMPLE.TEST.", now: now + 60).certificate.serialNumber, a.certificate.serialNumber)
        XCTAssertTrue(try ca.leaf(for: "a.example.test", now: now).sslPrivateKey === a.sslPrivateKey)
        let b = try ca.leaf(for: "b.example.test", now: now)
        XCTAssertNotEqual(b.certificate.serialNumber, a.certificate.serialNumber)
        XCTAssertNotEqual(b.certificate.publicKey, a.certificate.publicKey)
        // Copies of the CA share the cache.
        let copy = ca
        XCTAssertEqual(try copy.leaf(for: "b.example.test", now: now).certificate.serialNumber, b.certificate.serialNumber)

        // Still served 22 h later; replaced within the last hour.
        XCTAssertEqual(try ca.leaf(for: "a.example.test", now: now + 22 * 3600).certificate.serialNumber, a.certificate.serialNumber)
        let renewed = try ca.leaf(for: "a.example.test", now: now + 23.5 * 3600)
        XCTAssertNotEqual(renewed.certificate.serialNumber, a.certificate.serialNumber)

        for bad in ["", ".", "a..b", "10.0.0.1", "exa mple.test", "bücher.test"] {
            XCTAssertThrowsError(try ca.leaf(for: bad), bad) { XCTAssertTrue($0 is CAError) }
        }
    }

    func testConcurrentRequestsGetOneLeafPerHost() throws {
        let ca = try initCA().authority
        let hosts = (0..<5).map { "h\($0).example.test" }
        let lock = NSLock()
        var serials = [String: Set<Certificate.SerialNumber>]()
        DispatchQueue.concurrentPerform(iterations: 100) { i in
            let host = hosts[i % hosts.count]
            let serial = try? ca.leaf(for: host).certificate.serialNumber
            lock.lock(); defer { lock.unlock() }
            if let serial { serials[host, default: []].insert(serial) }
        }
        XCTAssertEqual(serials.count, hosts.count)
        for (host, s) in serials { XCTAssertEqual(s.count, 1, host) }
    }

    // MARK: - The command line

    func testCLIInitAndPath() throws {
        let policy = dir.appendingPathComponent("policy.toml").path
        try """
        version = 1
        [proxy]
        user = 65534
        ca_dir = "\(caDir)"
        ca_cert = "\(caCert)"
        [[allow]]
        host = "api.example.test"
        via = "proxy"
        """.write(toFile: policy, atomically: true, encoding: .utf8)

        let before = try FWTestSupport.run(Paths.fwctl, ["ca", "path", policy])
        XCTAssertEqual(before.status, 1)
        XCTAssertEqual(before.stdout, "")
        XCTAssertEqual(before.stderr, "\(caCert): no CA certificate yet; run `fwctl ca init \(policy)`\n")

        let first = try FWTestSupport.run(Paths.fwctl, ["ca", "init", policy])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(first.stdout, "created CA in \(caDir); certificate at \(caCert)\n")
        let key = try bytes(keyPath)
        if getuid() == 0 { XCTAssertEqual(try stat(keyPath).st_uid, 65534) }

        let second = try FWTestSupport.run(Paths.fwctl, ["ca", "init", policy])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(second.stdout, "CA already exists in \(caDir); certificate at \(caCert)\n")
        XCTAssertEqual(try bytes(keyPath), key)

        let path = try FWTestSupport.run(Paths.fwctl, ["ca", "path", policy])
        XCTAssertEqual(path.status, 0, path.stderr)
        XCTAssertEqual(path.stdout, "\(caCert)\n")

        // A broken CA directory: one line, exit 1.
        try FileManager.default.removeItem(atPath: pemPath)
        let broken = try FWTestSupport.run(Paths.fwctl, ["ca", "init", policy])
        XCTAssertEqual(broken.status, 1)
        XCTAssertEqual(broken.stderr.split(separator: "\n").count, 1, broken.stderr)
        XCTAssertTrue(broken.stderr.hasPrefix("\(pemPath): missing"), broken.stderr)
    }

    func testCLIPolicyErrors() throws {
        let noProxy = dir.appendingPathComponent("direct.toml").path
        try "version = 1\n[[allow]]\nhost = \"a.example.test\"\n".write(toFile: noProxy, atomically: true, encoding: .utf8)
        for sub in ["init", "path"] {
            let r = try FWTestSupport.run(Paths.fwctl, ["ca", sub, noProxy])
            XCTAssertEqual(r.status, 2)
            XCTAssertEqual(r.stderr, "\(noProxy): no [proxy] section; the CA belongs to the proxy (set proxy.ca_dir and proxy.ca_cert)\n")
        }
        let bad = dir.appendingPathComponent("bad.toml").path
        try "version = 1\n[proxy]\nca_dirr = \"x\"\n".write(toFile: bad, atomically: true, encoding: .utf8)
        XCTAssertEqual(try FWTestSupport.run(Paths.fwctl, ["ca", "init", bad]).status, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x").path))
        let help = try FWTestSupport.run(Paths.fwctl, ["ca"])
        XCTAssertTrue(help.stdout.contains("init") && help.stdout.contains("path"), help.stdout)
    }
}
