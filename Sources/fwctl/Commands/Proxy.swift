import ArgumentParser
import Dispatch
import FWNetlink
import FWPolicy
import FWProxy
import Foundation
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

struct Proxy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the enforcing proxy: proxy.listen, the endpoints and the transparent port; every connection pinned to one identity.")

    @Argument(help: "The policy file (TOML).") var policy: String
    @Option(help: "Run in this network namespace: a name under /run/netns or a path such as /proc/PID/ns/net.")
    var netns: String?
    @Flag(help: "Also log every request that is let through (refusals are always logged).")
    var verbose = false
    @Option(help: ArgumentHelp("Event-loop threads (default: one per CPU). Fewer leave more CPU to the sandbox; one serves thousands of requests a second.", valueName: "n"))
    var threads = System.coreCount

    func run() throws {
        if let netns {
            do { try NetworkNamespace.enter(netns) } catch { throw KernelFailure.report("proxy", error) }
        }
        let loaded = try Pipeline.load(policy)
        guard let settings = loaded.policy.proxy else {
            Output.error("\(policy): the policy has no [proxy] section")
            throw Exit.usage.code
        }
        // Started as root (by `fwctl up`, or by hand): everything from here on, the CA key
        // and the secrets included, is read as proxy.user, the one user the firewall lets
        // through to proxied hosts.
        if geteuid() == 0, let user = settings.user {
            do { try Self.dropPrivileges(to: user) } catch {
                Output.error("fwctl proxy: \(error)")
                throw Exit.privilege.code
            }
        }
        let secrets: SecretStore
        do { secrets = try SecretStore(policy: loaded.policy) } catch {
            Output.error("fwctl proxy: \(error)")
            throw Exit.usage.code
        }
        let servers = try Pipeline.dnsServers(loaded)
        var logger = Logger(label: "fwctl.proxy")
        logger.logLevel = verbose ? .debug : .info
        let server: ProxyServer
        let bound: SocketEndpoint
        do {
            server = try ProxyServer(policy: loaded.policy, dnsServers: servers, logger: logger, threads: max(1, threads),
                                     secrets: secrets)
            bound = try server.start()
        } catch {
            Output.error("fwctl proxy: \(error)")
            throw Exit.usage.code
        }
        // SIGHUP re-reads the secrets; SIGTERM and SIGINT stop accepting and let open
        // connections finish for a few seconds.
        let signals = [SIGTERM, SIGINT, SIGHUP].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if sig == SIGHUP {
                    do { try secrets.reload(); logger.info("secrets reloaded") } catch { logger.error("secrets not reloaded: \(error)") }
                } else {
                    logger.info("stopping: draining \(server.openConnections) open connection(s)")
                    server.drain(timeout: .seconds(5))
                }
            }
            source.resume()
            return source
        }
        print("fwctl proxy: listening on \(bound)")
        for (endpoint, address) in zip(loaded.policy.proxy!.endpoints, server.endpointAddresses) {
            print("fwctl proxy: endpoint \(address) -> \(endpoint.target)")
        }
        for address in server.transparentAddresses { print("fwctl proxy: transparent on \(address)") }
        fflush(stdout)
        Self.signalReady()
        server.wait()
        signals.forEach { $0.cancel() }
    }

    /// `fwctl up` passes a pipe as FWCTL_READY_FD: one line once every listener is bound,
    /// so `up` knows this process (not a previous one on the same ports) is serving.
    static let readyVariable = "FWCTL_READY_FD"

    static func signalReady() {
        guard let text = ProcessInfo.processInfo.environment[readyVariable], let fd = Int32(text), fd > 2 else { return }
        unsetenv(readyVariable)
        _ = "ready\n".withCString { write(fd, $0, 6) }
        close(fd)
    }

    struct PrivilegeError: Error, CustomStringConvertible { let description: String }

    /// Groups cleared, then the group, then the user; and a check that there is no way
    /// back. A numeric uid without a passwd entry gets the group of the same number.
    static func dropPrivileges(to user: ProxySettings.User) throws {
        let uid: uid_t, gid: gid_t
        switch user {
        case .name(let name):
            guard let pw = getpwnam(name) else {
                throw PrivilegeError(description: "proxy.user \"\(name)\" is not a user on this system")
            }
            (uid, gid) = (pw.pointee.pw_uid, pw.pointee.pw_gid)
        case .uid(let u):
            (uid, gid) = (u, getpwuid(u)?.pointee.pw_gid ?? u)
        }
        guard setgroups(0, nil) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw PrivilegeError(description: "cannot drop privileges to uid \(uid): \(String(cString: strerror(errno)))")
        }
        guard uid == 0 || (setuid(0) != 0 && geteuid() == uid && getegid() == gid) else {
            throw PrivilegeError(description: "privileges were not dropped to uid \(uid)")
        }
    }
}
