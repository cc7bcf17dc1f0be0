import Foundation
import XCTest
import FWTestSupport

/// The kernel half of `via = "proxy"`, applied to the lab's sandbox: only `proxy.user` (here
/// nobody, 65534) may open connections to the proxied ports; every other user, root
/// included, is refused there, while direct allows stay as they were.
final class ProxyLayerTests: LabTestCase {
    static let proxyUser: UInt32 = 65534

    func policy(_ proxy: String) -> String {
        LabPolicy(allows: ["host = \"ssh.lab.test\"\nports = [22]",
                           "host = \"api.lab.test\"\nvia = \"proxy\"\nports = [443]"]).toml
            + "\n[proxy]\n\(proxy)\n"
    }

    func testOnlyTheProxyUserReachesProxiedPorts() throws {
        let path = try lab.write("proxy.toml", policy("listen = \"127.0.0.1:3128\"\nuser = \(Self.proxyUser)"))
        try apply(path)
        for family in [Lab.Family.v4, .v6] {
            XCTAssertEqual(try lab.tcp("api.lab.test", 443, family: family, timeout: Self.fast).outcome, .refused,
                           "root must not reach a proxied port itself (\(family))")
            XCTAssertEqual(try lab.tcp("api.lab.test", 443, family: family, user: Self.proxyUser).outcome, .connected,
                           "the proxy user reaches it (\(family))")
        }
        XCTAssertEqual(try lab.tcp("api.lab.test", 80, timeout: Self.fast, user: Self.proxyUser).outcome, .refused,
                       "only the proxied ports")
        XCTAssertEqual(try lab.tcp("ssh.lab.test", 22).outcome, .connected, "direct allows are untouched")
        XCTAssertEqual(try lab.tcp("ssh.lab.test", 22, timeout: Self.fast, user: Self.proxyUser).outcome, .connected)
        let diff = try fwctl("diff", path, "--exit-code")
        XCTAssertEqual(diff.status, 0, "the applied table reads back as compiled:\n\(diff.stdout)\(diff.stderr)")
    }

    /// The proxy as another host: the sandbox reaches the proxy's listener, nothing else of
    /// the proxied hosts.
    func testWithoutAProxyUserOnlyTheProxysListenerIsReachable() throws {
        let path = try lab.write("sidecar.toml", policy("listen = \"\(Lab.Address.cdn):8080\""))
        try apply(path)
        XCTAssertEqual(try lab.tcp(Lab.Address.cdn, 8080).outcome, .connected, "the proxy's listener")
        XCTAssertEqual(try lab.tcp("api.lab.test", 443, timeout: Self.fast).outcome, .refused)
        XCTAssertEqual(try lab.tcp("api.lab.test", 443, timeout: Self.fast, user: Self.proxyUser).outcome, .refused)
    }

    /// Transparent mode's nat chain: root's TCP 443 to any outside host lands on the local
    /// transparent port (a listener standing in for the proxy counts what arrives), the proxy
    /// user's own connections and direct allows are not redirected.
    func testTransparentModeRedirectsEveryoneButTheProxyUser() throws {
        let path = try lab.write("transparent.toml", policy("listen = \"127.0.0.1:3128\"\nuser = \(Self.proxyUser)\ntransparent = true\ntransparent_port = 3130"))
        try apply(path)
        let log = lab.workDir.appendingPathComponent("listener.log").path
        let listener = try Daemon([try tool("ip"), "netns", "exec", lab.sandbox.name, try tool("python3"), "-u", "-c", """
            import socket
            s = socket.socket(socket.AF_INET6)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 3130))
            s.listen(16)
            print("ready")
            while True:
                c, a = s.accept()
                print("accepted", a[0])
                c.close()
            """], log: log)
        defer { listener.stop() }
        for _ in 0..<100 where !listener.output.contains("ready") { usleep(20_000) }
        func accepted() -> Int { listener.output.components(separatedBy: "accepted").count - 1 }

        XCTAssertEqual(try lab.tcp("api.lab.test", 443, family: .v4).outcome, .connected)
        XCTAssertEqual(try lab.tcp("api.lab.test", 443, family: .v6).outcome, .connected)
        XCTAssertEqual(try lab.tcp("blocked.lab.test", 80).outcome, .connected, "every host on 80/443: the proxy decides")
        for _ in 0..<50 where accepted() < 3 { usleep(20_000) }
        XCTAssertEqual(accepted(), 3, "root's connections went to the transparent port:\n\(listener.output)")

        XCTAssertEqual(try lab.tcp("api.lab.test", 443, user: Self.proxyUser).outcome, .connected)
        XCTAssertEqual(try lab.tcp("ssh.lab.test", 22).outcome, .connected)
        usleep(100_000)
        XCTAssertEqual(accepted(), 3, "the proxy user's own connection and other ports are not redirected")
        let diff = try fwctl("diff", path, "--exit-code")
        XCTAssertEqual(diff.status, 0, "the nat chain reads back as compiled:\n\(diff.stdout)\(diff.stderr)")
    }

    /// A user name this host does not know cannot go into a kernel: one clear line, exit 2,
    /// nothing applied.
    func testUnknownProxyUserNameExits2() throws {
        let path = try lab.write("unknown.toml", policy("listen = \"127.0.0.1:3128\"\nuser = \"fwctl-no-such-user\""))
        let r = try fwctl("apply", path)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("proxy.user: \"fwctl-no-such-user\" is not a user on this system"), r.stderr)
        XCTAssertEqual(try lab.nftList(), "")
    }
}
