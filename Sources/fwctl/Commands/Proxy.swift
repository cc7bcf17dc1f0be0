import ArgumentParser
import Dispatch
import FWPolicy
import FWProxy
import Foundation
import Logging

struct Proxy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the enforcing proxy: proxy.listen, the endpoints and the transparent port; every connection pinned to one identity.")

    @Argument(help: "The policy file (TOML).") var policy: String

    func run() throws {
        let loaded = try Pipeline.load(policy)
        guard loaded.policy.proxy != nil else {
            Output.error("\(policy): the policy has no [proxy] section")
            throw Exit.usage.code
        }
        let secrets: SecretStore
        do { secrets = try SecretStore(policy: loaded.policy) } catch {
            Output.error("fwctl proxy: \(error)")
            throw Exit.usage.code
        }
        let servers = try Pipeline.dnsServers(loaded)
        var logger = Logger(label: "fwctl.proxy")
        logger.logLevel = .info
        let server: ProxyServer
        let bound: SocketEndpoint
        do {
            server = try ProxyServer(policy: loaded.policy, dnsServers: servers, logger: logger, secrets: secrets)
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
        server.wait()
        signals.forEach { $0.cancel() }
    }
}
