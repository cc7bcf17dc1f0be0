import ArgumentParser
import FWPolicy
import FWProxy
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct CA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Create or locate the proxy's certificate authority.",
        subcommands: [CAInit.self, CAPath.self])

    /// The policy's [proxy] section; without one there is no CA to speak of (exit 2).
    static func proxySettings(_ policy: String) throws -> ProxySettings {
        let loaded = try Pipeline.load(policy)
        guard let proxy = loaded.policy.proxy else {
            Output.error("\(policy): no [proxy] section; the CA belongs to the proxy (set proxy.ca_dir and proxy.ca_cert)")
            throw Exit.usage.code
        }
        return proxy
    }

    /// Who gets the CA key: the proxy user, when we are root and can hand it over.
    static func owner(_ proxy: ProxySettings, _ policy: String) throws -> (uid: uid_t, gid: gid_t)? {
        guard getuid() == 0, let user = proxy.user else { return nil }
        switch user {
        case .name(let name):
            guard let pw = getpwnam(name) else {
                Output.error("\(policy): proxy.user \"\(name)\" is not a user on this system")
                throw Exit.usage.code
            }
            return (pw.pointee.pw_uid, pw.pointee.pw_gid)
        case .uid(let uid):
            // A bare uid need not be in /etc/passwd; then the group is left unchanged (-1).
            return (uid, getpwuid(uid)?.pointee.pw_gid ?? gid_t.max)
        }
    }
}

struct CAInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the CA in proxy.ca_dir, or reuse it, and copy its certificate to proxy.ca_cert.",
        discussion: "Idempotent. Run as root, the key (0600) and ca_dir (0700) are given to proxy.user.")

    @Argument(help: "The policy file (TOML).") var policy: String

    func run() throws {
        let proxy = try CA.proxySettings(policy)
        let owner = try CA.owner(proxy, policy)
        do {
            let (_, created) = try CertificateAuthority.initialize(caDir: proxy.caDir, caCert: proxy.caCert, owner: owner)
            print(created ? "created CA in \(proxy.caDir); certificate at \(proxy.caCert)"
                          : "CA already exists in \(proxy.caDir); certificate at \(proxy.caCert)")
        } catch {
            Output.error("\(error)")
            throw Exit.differences.code
        }
    }
}

struct CAPath: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "path",
        abstract: "Print where the CA certificate for clients is (proxy.ca_cert).")

    @Argument(help: "The policy file (TOML).") var policy: String

    func run() throws {
        let proxy = try CA.proxySettings(policy)
        guard FileManager.default.fileExists(atPath: proxy.caCert) else {
            Output.error("\(proxy.caCert): no CA certificate yet; run `fwctl ca init \(policy)`")
            throw Exit.differences.code
        }
        print(proxy.caCert)
    }
}
