import Foundation
import XCTest
import FWTestSupport

/// `fwctl up` end to end in the lab: the policy applied to the sandbox, the proxy started
/// in it as proxy.user (nobody), and an Anthropic-like HTTPS upstream outside
/// (anthropic.lab.test, Tests/FWProxyTests/Fixtures/upstream.py, which records the headers
/// it receives and echoes the key at /echo). The sandbox user (uid 1000) holds only the
/// placeholder; the upstream must receive the real key, in explicit and transparent mode,
/// over IPv4 and IPv6, and nothing else may get through.
final class UpTests: LabTestCase {
    static let proxyUser: UInt32 = 65534
    static let sandboxUser: UInt32 = 1000
    let secret = "sk-ant-real-lab-key-0123456789abcdef"
    let placeholder = "sk-ant-placeholder-lab"
    var upstream: Daemon?
    var pidFile: String {
        var st = stat()
        _ = stat("/run/netns/\(lab.sandbox.name)", &st)
        return "/run/fwctl/proxy-netns\(st.st_ino)-fwctl.pid"
    }

    func work(_ name: String) -> String { lab.workDir.appendingPathComponent(name).path }

    override func setUpWithError() throws {
        try super.setUpWithError()
        _ = try tool("curl")
        let certs = lab.workDir.appendingPathComponent("upstream")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        try TestCertificates.makeUpstream(in: certs, names: ["anthropic.lab.test", "blocked.lab.test"])
        let script = Paths.packageRoot.appendingPathComponent("Tests/FWProxyTests/Fixtures/upstream.py").path
        upstream = try Daemon([try tool("ip"), "netns", "exec", lab.outside.name, try tool("python3"), script, "443",
                               certs.appendingPathComponent("upstream.pem").path, certs.appendingPathComponent("upstream.key").path,
                               work("requests.jsonl"), "--bind", Lab.Address.upstream, "--bind", Lab.Address.upstream6,
                               "--plain-port", "9080"], log: work("upstream.log"))
        var ready = false
        for _ in 0..<100 where !ready {
            let r = try lab.exec(in: lab.outside, [try tool("curl"), "-sk", "-o", "/dev/null", "--max-time", "1", "https://\(Lab.Address.upstream)/"])
            ready = r.status == 0
            if !ready { usleep(50_000) }
        }
        guard ready else { throw DaemonError("the upstream did not start: \(upstream?.output ?? "")") }
        try secret.write(toFile: work("secret"), atomically: true, encoding: .utf8)
        chown(work("secret"), Self.proxyUser, Self.proxyUser)
        chmod(work("secret"), 0o400)
        _ = try lab.write("policy.toml", policy())
    }

    override func tearDown() {
        upstream?.stop()
        try? FileManager.default.removeItem(atPath: pidFile)
        try? FileManager.default.removeItem(atPath: pidFile.replacingOccurrences(of: "/proxy-", with: "/watch-"))
        super.tearDown()
    }

    func policy(extraAllow: String = "", dns: String = "") -> String {
        """
        version = 1

        [firewall]
        table = "fwctl"
        egress = "reject"

        [dns]
        servers = ["\(Lab.Address.resolver)"]
        timeout_ms = 1000
        \(dns)

        [proxy]
        listen = "127.0.0.1:3128"
        user = \(Self.proxyUser)
        transparent = true
        transparent_port = 3130
        ca_dir = "\(work("ca"))"
        ca_cert = "\(work("fwctl-ca.pem"))"
        upstream_ca = "\(work("upstream/ca.pem"))"
        access_log = "\(work("log/access.jsonl"))"

        [[allow]]
        host = "anthropic.lab.test"
        via = "proxy"
        ports = [443]
        methods = ["GET", "POST"]
        [[allow.inject]]
        header = "x-api-key"
        placeholder = "\(placeholder)"
        secret = "file:\(work("secret"))"

        [[allow]]
        host = "ssh.lab.test"
        ports = [22]
        \(extraAllow)
        """
    }

    /// `fwctl up` from the controller namespace, which must succeed.
    @discardableResult
    func up(_ policy: String = "policy.toml", file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let r = try fwctl("up", work(policy), "--log", work("proxy.log"), "--watch-log", work("watch.log"))
        XCTAssertEqual(r.status, 0, "fwctl up: \(r.stdout)\(r.stderr)\n\(tail(work("proxy.log")))", file: file, line: line)
        return r
    }

    /// curl in the sandbox as the sandbox user; returns (exit, http code, body + headers).
    func curl(_ args: [String]) throws -> (exit: Int32, code: String, text: String) {
        let r = try lab.exec(in: lab.sandbox, [try tool("setpriv"), "--reuid=\(Self.sandboxUser)", "--regid=\(Self.sandboxUser)",
                                               "--clear-groups", try tool("curl"), "-sS", "-i", "--max-time", "5",
                                               "-w", "\n%{http_code}"] + args)
        let code = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        return (r.status, code, r.stdout.replacingOccurrences(of: secret, with: "<SECRET>") + r.stderr)
    }

    var proxyPID: pid_t? { (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) } }

    /// The fwctl proxies running in the sandbox.
    func proxies(_ kind: String = "proxy") throws -> [pid_t] {
        let pids = try FWTestSupport.run(try tool("ip"), ["netns", "pids", lab.sandbox.name]).stdout.split(separator: "\n").compactMap { pid_t($0) }
        return pids.filter { pid in
            let cmd = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            let args = cmd.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return args.count > 1 && args[0].hasSuffix("fwctl") && args[1] == kind
        }
    }

    func receivedRealKey() -> Bool {
        let last = jsonLines(work("requests.jsonl")).last?["headers"] as? [String: String] ?? [:]
        return last.first { $0.key.lowercased() == "x-api-key" }?.value == secret
    }

    // MARK: -

    func testUpThenTheAPIIsReachableOnlyThroughTheProxyWithTheRealKey() throws {
        let r = try up()
        XCTAssertTrue(r.stdout.contains("proxy ready"), r.stdout)
        let pid = try XCTUnwrap(proxyPID)
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        XCTAssertTrue(status.contains("Uid:\t\(Self.proxyUser)\t\(Self.proxyUser)\t\(Self.proxyUser)"), "the proxy runs as proxy.user:\n\(status)")

        let key = ["-H", "x-api-key: \(placeholder)", "--cacert", work("fwctl-ca.pem")]
        // Explicit (HTTPS_PROXY) and transparent (no proxy settings at all), IPv4 and IPv6.
        for (what, extra) in [("explicit", ["--proxy", "http://127.0.0.1:3128"]), ("transparent v4", ["-4"]), ("transparent v6", ["-6"])] {
            let c = try curl(key + extra + ["https://anthropic.lab.test/echo"])
            XCTAssertEqual(c.code, "200", "\(what): \(c.text)\n\(tail(work("log/access.jsonl")))")
            XCTAssertTrue(c.text.contains("key=\(placeholder)"), "\(what): the echo comes back with the placeholder: \(c.text)")
            XCTAssertFalse(c.text.contains("<SECRET>"), "\(what): the real key reached the sandbox user")
            XCTAssertTrue(receivedRealKey(), "\(what): the upstream did not receive the real key")
        }

        // Around the proxy: the upstream's other port, and the proxied port without a redirect.
        XCTAssertNotEqual(try curl(["http://anthropic.lab.test:9080/"]).exit, 0, "the upstream is not reachable directly")
        // A blocked host's name pointed at the allowed address: the SNI decides, not the address.
        let fronted = try curl(["--cacert", work("fwctl-ca.pem"), "--resolve", "blocked.lab.test:443:\(Lab.Address.upstream)",
                                "https://blocked.lab.test/"])
        XCTAssertNotEqual(fronted.exit, 0, fronted.text)
        let viaProxy = try curl(["--proxy", "http://127.0.0.1:3128", "https://blocked.lab.test/"])
        XCTAssertTrue(viaProxy.text.contains("403"), viaProxy.text)
        // Blocked hosts by any other port or protocol (80 and 443 go to the proxy, above).
        for port in Lab.Port.tcp where port != 80 && port != 443 {
            XCTAssertNotEqual(try lab.tcp("blocked.lab.test", port, timeout: Self.fast, user: Self.sandboxUser).outcome, .connected,
                              "blocked.lab.test:\(port)")
        }
        XCTAssertNotEqual(try lab.udp("blocked.lab.test", 443).outcome, .answered)

        // The secret and the CA key are the proxy user's alone.
        for file in [work("secret"), work("ca/ca.key")] {
            let read = try lab.exec(in: lab.sandbox, [try tool("setpriv"), "--reuid=\(Self.sandboxUser)", "--regid=\(Self.sandboxUser)",
                                                      "--clear-groups", "/bin/cat", file])
            XCTAssertNotEqual(read.status, 0, "the sandbox user can read \(file)")
        }
        let log = (try? String(contentsOfFile: work("log/access.jsonl"), encoding: .utf8)) ?? ""
        XCTAssertFalse(log.contains(secret), "no secret in the access log")
        XCTAssertFalse(tail(work("proxy.log"), lines: 1000).contains(secret), "no secret in the proxy's output")
    }

    func testUpWithTheDNSFilter() throws {
        _ = try lab.write("filter.toml", policy(dns: "filter = true\nfilter_port = 5353"))
        let r = try up("filter.toml")
        XCTAssertTrue(r.stdout.contains("watch ready") && r.stdout.contains("DNS filter on"), r.stdout)
        let first = try proxies("watch")
        XCTAssertEqual(first.count, 1, "one watch runs")

        // The sandbox user's lookups: allowed names answered, others NXDOMAIN from any server.
        func dig(_ name: String, server: String) throws -> String {
            try lab.exec(in: lab.sandbox, [try tool("setpriv"), "--reuid=\(Self.sandboxUser)", "--regid=\(Self.sandboxUser)",
                                           "--clear-groups", try tool("dig"), "@\(server)", name, "+time=2", "+tries=1"]).stdout
        }
        XCTAssertTrue(try dig("anthropic.lab.test", server: Lab.Address.resolver).contains(Lab.Address.upstream))
        XCTAssertTrue(try dig("blocked.lab.test", server: Lab.Address.resolver).contains("status: NXDOMAIN"))
        XCTAssertTrue(try dig("blocked.lab.test", server: Lab.Address.rogueResolver).contains("status: NXDOMAIN"))

        // The proxy resolves through the filter too (it is not exempt): both modes still work.
        let key = ["-H", "x-api-key: \(placeholder)", "--cacert", work("fwctl-ca.pem")]
        for extra in [["--proxy", "http://127.0.0.1:3128"], ["-4"]] {
            let c = try curl(key + extra + ["https://anthropic.lab.test/echo"])
            XCTAssertEqual(c.code, "200", "\(extra): \(c.text)\n\(tail(work("watch.log")))")
        }

        // A second `up` starts a new watch before stopping the old one (the port is shared
        // through SO_REUSEPORT); one runs afterwards, and the filter still answers.
        let again = try up("filter.toml")
        XCTAssertTrue(again.stdout.contains("stopped the previous watch (pid \(first[0]))"), again.stdout)
        let second = try proxies("watch")
        XCTAssertEqual(second.count, 1)
        XCTAssertNotEqual(second, first)
        XCTAssertTrue(try dig("blocked.lab.test", server: Lab.Address.resolver).contains("status: NXDOMAIN"))
        XCTAssertTrue(try dig("anthropic.lab.test", server: Lab.Address.resolver).contains(Lab.Address.upstream))
    }

    func testSecondUpReplacesTheFirst() throws {
        try up()
        let first = try XCTUnwrap(proxyPID)
        let again = try up()
        XCTAssertTrue(again.stdout.contains("stopped the previous proxy (pid \(first))"), again.stdout)
        let second = try XCTUnwrap(proxyPID)
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(try proxies(), [second], "one proxy runs")
        // The proxy's ports carry SO_REUSEPORT (so the next `up` can bind them before the old
        // proxy lets go), which the kernel grants to the same uid only: the sandbox user
        // cannot take them over, not even with SO_REUSEPORT of its own.
        let squat = try lab.exec(in: lab.sandbox, [try tool("setpriv"), "--reuid=\(Self.sandboxUser)", "--regid=\(Self.sandboxUser)",
                                                   "--clear-groups", try tool("python3"), "-c", """
            import socket, sys
            taken = []
            for port in (3128, 3130):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                try:
                    s.bind(("127.0.0.1", port)); s.listen(1); taken.append(port)
                except OSError:
                    pass
            print(taken)
            """])
        XCTAssertEqual(squat.stdout, "[]\n", "the sandbox user bound a proxy port: \(squat.stdout)\(squat.stderr)")
        let c = try curl(["-H", "x-api-key: \(placeholder)", "--cacert", work("fwctl-ca.pem"), "https://anthropic.lab.test/echo"])
        XCTAssertEqual(c.code, "200", c.text)
    }

    /// The proxy dies: proxied hosts become unreachable, nothing opens.
    func testKilledProxyLeavesTheFirewallClosed() throws {
        try up()
        let pid = try XCTUnwrap(proxyPID)
        kill(pid, SIGKILL)
        for _ in 0..<100 where kill(pid, 0) == 0 { usleep(20_000) }
        let c = try curl(["-H", "x-api-key: \(placeholder)", "--cacert", work("fwctl-ca.pem"), "https://anthropic.lab.test/echo"])
        XCTAssertNotEqual(c.exit, 0, c.text)
        XCTAssertEqual(try lab.tcp("anthropic.lab.test", 443, timeout: Self.fast, user: Self.sandboxUser).outcome, .refused,
                       "redirected to a port nobody listens on")
        XCTAssertNotEqual(try curl(["http://anthropic.lab.test:9080/"]).exit, 0)
        XCTAssertTrue(try lab.nftList().contains("table inet fwctl {"))
    }

    /// examples/devcontainer/post-start.sh itself (not a copy), run as root inside the
    /// sandbox the way the container runs it, with the image's paths pointed into the lab:
    /// the mounted key is copied for the proxy user, `fwctl up` brings everything up, the
    /// environment file is written, and the sandbox user (www-data here), with only that
    /// file, reaches the API through the proxy with the placeholder while the upstream gets
    /// the real key.
    func testTheDevcontainerHookBringsItAllUp() throws {
        let mounted = work("mounted-key")
        try secret.write(toFile: mounted, atomically: true, encoding: .utf8)
        chmod(mounted, 0o600)
        let copy = work("fwproxy/anthropic_api_key")
        _ = try lab.write("hook-policy.toml", policy().replacingOccurrences(of: "file:\(work("secret"))", with: "file:\(copy)"))
        // The sandbox user's HOME, as the container has it: the hook writes the env file
        // there as that user, never as root.
        try FileManager.default.createDirectory(atPath: work("home"), withIntermediateDirectories: true)
        let wwwData = try XCTUnwrap(getpwnam("www-data"), "the www-data user")
        chown(work("home"), wwwData.pointee.pw_uid, wwwData.pointee.pw_gid)
        let hook = Paths.packageRoot.appendingPathComponent("examples/devcontainer/post-start.sh").path
        let env = [
            "FWCTL=\(Paths.fwctl)", "FWCTL_POLICY=\(work("hook-policy.toml"))", "FWCTL_SECRET=\(mounted)",
            "FWCTL_SECRET_DIR=\(work("fwproxy"))", "FWCTL_SECRET_COPY=\(copy)", "FWCTL_PROXY_USER=nobody",
            "FWCTL_ENV_FILE=\(work("home/.config/fwctl/env.sh"))", "FWCTL_LOG=\(work("proxy.log"))", "FWCTL_WATCH_LOG=\(work("watch.log"))", "FWCTL_VERIFY=0",
            "FWCTL_SANDBOX_USER=www-data", "FWCTL_CA_DIR=\(work("ca"))", "FWCTL_CLAUDE_SETTINGS=/nonexistent", "SUDO=",
            "HOME=\(work("home"))", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        let r = try lab.exec(in: lab.sandbox, ["/usr/bin/env", "-i"] + env + [try tool("bash"), hook], seconds: 60)
        XCTAssertEqual(r.status, 0, "the hook failed:\n\(r.stdout)\(r.stderr)")
        XCTAssertTrue(r.stdout.contains("www-data can read neither the API key nor the CA key"), r.stdout)
        XCTAssertTrue(r.stdout.contains("fwctl-post-start: ready"), r.stdout)
        XCTAssertFalse((r.stdout + r.stderr).contains(secret), "the hook printed the key")
        let pid = try XCTUnwrap(proxyPID, "fwctl up left a proxy running")
        XCTAssertTrue(try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8).contains("Uid:\t\(Self.proxyUser)\t"))

        // The sandbox user with nothing but the environment file.
        let curl = try lab.exec(in: lab.sandbox, [try tool("setpriv"), "--reuid=www-data", "--regid=www-data", "--clear-groups",
                                                  try tool("bash"), "-c", "set -a; . \"$0\"; set +a; exec curl -sS --max-time 5 -H \"x-api-key: \(placeholder)\" https://anthropic.lab.test/echo",
                                                  work("home/.config/fwctl/env.sh")])
        XCTAssertEqual(curl.stdout, "key=\(placeholder)\n", curl.stderr.replacingOccurrences(of: secret, with: "<SECRET>"))
        XCTAssertTrue(receivedRealKey(), "the upstream did not receive the real key")
        var st = stat()
        XCTAssertEqual(stat(work("home/.config/fwctl/env.sh"), &st), 0)
        XCTAssertEqual(st.st_uid, wwwData.pointee.pw_uid, "the env file is the sandbox user's, written by it")
    }

    /// The policy cannot be applied and nothing of fwctl's is in place: a lockdown table.
    func testFailedUpInstallsALockdown() throws {
        _ = try lab.write("broken.toml", policy(extraAllow: "\n[[allow]]\nhost = \"missing.lab.test\"\n"))
        let r = try fwctl("up", work("broken.toml"), "--log", work("proxy.log"))
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("lockdown table inet fwctl"), r.stderr)
        XCTAssertTrue(try lab.nftList().contains("table inet fwctl {"))
        XCTAssertEqual(try lab.tcp(Lab.Address.ssh, 22, timeout: Self.fast).outcome, .timeout, "closed: dropped")
        XCTAssertEqual(try lab.dig("ssh.lab.test", server: Lab.Address.resolver).records, [Lab.Address.ssh],
                       "DNS to the policy's resolver stays open, so a corrected policy can be applied")
        XCTAssertNil(proxyPID, "no proxy was started")
        // A good policy afterwards replaces the lockdown.
        try up()
        XCTAssertEqual(try lab.tcp("ssh.lab.test", 22).outcome, .connected)
    }
}
