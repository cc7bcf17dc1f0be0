import Crypto
import Foundation
import NIOSSL
import X509
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The proxy's own certificate authority, kept in `proxy.ca_dir` as `ca.key` (ECDSA P-256,
/// PEM, 0600, owned by the proxy user) and `ca.pem`. The sandbox trusts its certificate
/// (the public copy at `proxy.ca_cert`), so the proxy can terminate TLS for the hosts whose
/// requests it must inspect, with a leaf minted per host.
public struct CertificateAuthority: Sendable {
    public static let keyFileName = "ca.key"
    public static let certFileName = "ca.pem"

    public let directory: String
    public let certificate: Certificate
    let privateKey: P256.Signing.PrivateKey
    /// Shared by copies of this value, so every connection handler sees the same leaves.
    private let leaves = LeafCache()

    public var keyPath: String { Self.keyPath(directory) }
    public var certificatePath: String { Self.certPath(directory) }
    static func keyPath(_ dir: String) -> String { (dir as NSString).appendingPathComponent(keyFileName) }
    static func certPath(_ dir: String) -> String { (dir as NSString).appendingPathComponent(certFileName) }

    init(directory: String, certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.directory = directory
        self.certificate = certificate
        self.privateKey = privateKey
    }

    // MARK: - Creating and loading

    /// Creates the CA in `caDir`, or reuses the one there, and publishes its certificate at
    /// `caCert`. Idempotent: a second call changes no byte. `owner` (the proxy user, when
    /// run as root) gets the directory and the key, so the unprivileged proxy can read it.
    /// A key without its certificate, or a certificate that does not belong to the key, is
    /// an error: a key is never silently replaced.
    public static func initialize(caDir: String, caCert: String, owner: (uid: uid_t, gid: gid_t)?,
                                  now: Date = Date()) throws -> (authority: CertificateAuthority, created: Bool) {
        let keyPath = keyPath(caDir), certPath = certPath(caDir)
        let authority: CertificateAuthority
        let created: Bool
        switch (CAFiles.exists(keyPath), CAFiles.exists(certPath)) {
        case (true, true):
            authority = try load(caDir: caDir)
            // A CA made earlier without an owner (or by hand) is put right, so the proxy
            // user can read its key; mode and owner only, never the content.
            if let owner {
                try CAFiles.secure(caDir, mode: 0o700, owner: owner)
                try CAFiles.secure(keyPath, mode: 0o600, owner: owner)
            }
            created = false
        case (true, false):
            throw CAError(certPath, "missing, but \(keyPath) exists; refusing to replace a key: restore ca.pem, or move ca.key away to make a new CA")
        case (false, true):
            throw CAError(keyPath, "missing, but \(certPath) exists; restore ca.key, or move ca.pem away to make a new CA")
        case (false, false):
            try CAFiles.makeDirectories(caDir, mode: 0o700, owner: owner)
            let key = P256.Signing.PrivateKey()
            let cert = try makeCACertificate(key: key, now: now)
            // Key first: a crash in between leaves a key without a certificate, which the
            // next run reports instead of overwriting.
            try CAFiles.writeFile(keyPath, Array(key.pemRepresentation.utf8), mode: 0o600, owner: owner)
            try CAFiles.writeFile(certPath, try pem(cert, certPath), mode: 0o644, owner: owner)
            authority = CertificateAuthority(directory: caDir, certificate: cert, privateKey: key)
            created = true
        }
        try authority.publish(to: caCert)
        return (authority, created)
    }

    /// Loads the CA that `initialize` made: what `fwctl proxy` does at start.
    public static func load(caDir: String) throws -> CertificateAuthority {
        let keyPath = keyPath(caDir), certPath = certPath(caDir)
        let hint = "; run `fwctl ca init POLICY` first"
        let keyText = String(decoding: try CAFiles.readFile(keyPath, hint: hint), as: UTF8.self)
        let certText = String(decoding: try CAFiles.readFile(certPath, hint: hint), as: UTF8.self)
        // The parsers' errors are not passed on: a message must never quote key material.
        guard let key = try? P256.Signing.PrivateKey(pemRepresentation: keyText) else {
            throw CAError(keyPath, "not a PEM ECDSA P-256 private key")
        }
        guard let cert = try? Certificate(pemEncoded: certText) else {
            throw CAError(certPath, "not a PEM X.509 certificate")
        }
        guard cert.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw CAError(certPath, "does not belong to \(keyPath) (different public key); move both away to make a new CA")
        }
        guard case .isCertificateAuthority? = try? cert.extensions.basicConstraints else {
            throw CAError(certPath, "not a CA certificate (no basicConstraints CA:TRUE)")
        }
        return CertificateAuthority(directory: caDir, certificate: cert, privateKey: key)
    }

    /// Copies the certificate to `path` for clients, unless it is already there as is.
    func publish(to path: String) throws {
        let bytes = try Self.pem(certificate, path)
        if let existing = try? CAFiles.readFile(path), existing == bytes { return }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty { try CAFiles.makeDirectories(parent, mode: 0o755) }
        try CAFiles.writeFile(path, bytes, mode: 0o644, owner: nil)
    }

    static func pem(_ cert: Certificate, _ path: String) throws -> [UInt8] {
        do { return Array((try cert.serializeAsPEM().pemString + "\n").utf8) } catch {
            throw CAError(path, "cannot encode the certificate: \(error)")
        }
    }

    static func makeCACertificate(key: P256.Signing.PrivateKey, now: Date) throws -> Certificate {
        let publicKey = Certificate.PublicKey(key.publicKey)
        let ski = SubjectKeyIdentifier(hash: publicKey)
        // A short tag from the key in the name, so two sandboxes' CAs trusted side by side
        // can be told apart by a person (and by chain building, which matches names first).
        let tag = ski.keyIdentifier.prefix(4).map { String(format: "%02x", $0) }.joined()
        let name = try DistinguishedName {
            OrganizationName("fwctl")
            CommonName("fwctl sandbox CA \(tag)")
        }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now - 3600,  // tolerates a client clock a little behind
            notValidAfter: now + 10 * 365 * 86400,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                ski
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
    }

    // MARK: - Leaves

    /// How long a leaf is valid, how far it is back-dated, and how close to its end a cached
    /// one is replaced (so no handshake is served a certificate about to expire).
    static let leafLifetime: TimeInterval = 24 * 3600
    static let leafBackdate: TimeInterval = 5 * 60
    static let leafRenewBefore: TimeInterval = 3600

    /// A certificate for one host, signed by this CA, with its key in both the X509/Crypto
    /// and the NIOSSL types (the latter for NIOSSL's SNI context callback).
    public struct Leaf: Sendable {
        public let certificate: Certificate
        public let privateKey: P256.Signing.PrivateKey
        /// What the TLS server sends: the leaf alone; clients hold the CA as a trust anchor.
        public var certificateChain: [Certificate] { [certificate] }
        public let sslCertificateChain: [NIOSSLCertificate]
        public let sslPrivateKey: NIOSSLPrivateKey
    }

    /// The leaf for `host` (case and a trailing dot ignored): minted on first use, then
    /// served from a cache until an hour before it expires. Safe to call from any thread.
    public func leaf(for host: String, now: Date = Date()) throws -> Leaf {
        let name = try Self.normalize(host)
        return try leaves.get(name, now: now, renewBefore: Self.leafRenewBefore) {
            try mintLeaf(name, now: now)
        }
    }

    static func normalize(_ host: String) throws -> String {
        var h = host.lowercased()
        if h.hasSuffix(".") { h.removeLast() }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-._")
        // Names only: the proxy refuses IP literals before it would get here.
        guard !h.isEmpty, h.utf8.count <= 253, h.allSatisfy(allowed.contains),
              !h.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty),
              h.contains(where: \.isLetter)
        else { throw CAError(host, "not a host name a certificate can be issued for") }
        return h
    }

    func mintLeaf(_ host: String, now: Date) throws -> Leaf {
        guard certificate.notValidAfter > now + Self.leafRenewBefore else {
            throw CAError(certificatePath, "the CA certificate expires on \(certificate.notValidAfter); move ca_dir away and run `fwctl ca init POLICY`")
        }
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let caKeyID = (try? certificate.extensions.subjectKeyIdentifier)?.keyIdentifier
            ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier
        // A common name is limited to 64 characters; the SAN is what clients check anyway.
        let subject = try DistinguishedName {
            OrganizationName("fwctl")
            if host.utf8.count <= 64 { CommonName(host) }
        }
        do {
            let cert = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: now - Self.leafBackdate,
                notValidAfter: min(now + Self.leafLifetime, certificate.notValidAfter),
                issuer: certificate.subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames([.dnsName(host)])
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: caKeyID)
                },
                issuerPrivateKey: Certificate.PrivateKey(privateKey))
            let sslCert = try NIOSSLCertificate(bytes: Array(try cert.serializeAsPEM().pemString.utf8), format: .pem)
            let sslKey = try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)
            return Leaf(certificate: cert, privateKey: key, sslCertificateChain: [sslCert], sslPrivateKey: sslKey)
        } catch {
            throw CAError(host, "cannot mint a leaf certificate: \(type(of: error))")
        }
    }
}

/// Leaves by host name. Minting happens under the lock, so concurrent first requests for
/// one host get one leaf, not several.
final class LeafCache: @unchecked Sendable {
    private let lock = NSLock()
    private var leaves: [String: CertificateAuthority.Leaf] = [:]
    /// Wildcard allows admit any number of names; this bounds what they can make us hold.
    static let limit = 4096

    func get(_ host: String, now: Date, renewBefore: TimeInterval,
             mint: () throws -> CertificateAuthority.Leaf) throws -> CertificateAuthority.Leaf {
        lock.lock()
        defer { lock.unlock() }
        if let leaf = leaves[host], leaf.certificate.notValidAfter > now + renewBefore { return leaf }
        let leaf = try mint()
        if leaves.count >= Self.limit {
            leaves = leaves.filter { $0.value.certificate.notValidAfter > now + renewBefore }
            if leaves.count >= Self.limit { leaves.removeAll() }
        }
        leaves[host] = leaf
        return leaf
    }
}
