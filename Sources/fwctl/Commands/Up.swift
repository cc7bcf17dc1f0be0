import ArgumentParser
import FWNetlink
import FWPolicy
import FWProxy
import FWResolve
import FWRuleset
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `fwctl up`: everything a devcontainer hook needs, in order, each step only after the one
/// before it succeeded: apply the policy; start `fwctl watch` when the policy has names to
/// keep fresh or the DNS filter; create the CA if missing; start `fwctl proxy` in the
/// background (it drops to proxy.user itself); wait until each answers. A previous `up`'s
/// watch and proxy are stopped once their successors are ready.
///
/// Fail closed: when the policy cannot be applied and no table of fwctl's is in place, a
/// lockdown table goes in (loopback and existing connections only). When the proxy does
/// not come up, the applied firewall stays: proxied hosts are then unreachable, not open.
struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the policy, start watch, create the CA, start the proxy as proxy.user; wait until they answer.",
        discussion: """
        The one command a devcontainer's postStart hook runs. A second `up` replaces the first
        (the old watch and proxy are stopped). watch runs when the policy names hosts to allow
        directly or turns on dns.filter. On failure the firewall is left closed and one line says what
        failed. Exit codes as for apply; 1 when the proxy did not come up.
        """)

    @Argument(help: "The policy file (TOML).") var policy: String
    @OptionGroup var kernel: KernelOptions
    @Flag(help: "Run the proxy in the foreground (this process becomes the proxy).") var foreground = false
    @Option(help: "Where the background proxy's own output goes.") var log = "/var/log/fwctl/proxy.log"
    @Option(name: .customLong("watch-log"), help: "Where the background `fwctl watch`'s own output goes.")
    var watchLog = "/var/log/fwctl/watch.log"
    @Option(help: "Seconds to wait for the proxy (and watch) to answer.") var timeout: Double = 10

    /// Where `up` keeps the background proxy's pid, one file per namespace and table.
    static let runDirectory = "/run/fwctl"

    func run() throws {
        try kernel.prepare("up")
        let started = Date()
        let loaded: LoadedPolicy
        do { loaded = try Pipeline.load(policy) } catch {
            failClosed(table: "fwctl", reason: "\(policy) could not be read", dns: nil)
            throw error
        }
        let table = loaded.policy.firewall.table
        let dns = loaded.policy.dns.servers

        // 1. The firewall.
        let ruleset: Ruleset
        do {
            ruleset = try Compiled.ruleset(loaded)
            try Kernel.apply(ruleset)
        } catch let error as NetlinkError {
            let code = KernelFailure.report("up", error)
            failClosed(table: table, reason: "the policy was not applied", dns: dns)
            throw code
        } catch {
            failClosed(table: table, reason: "the policy was not applied", dns: dns)
            throw error
        }
        let rules = ruleset.table.chains.reduce(0) { $0 + $1.rules.count }
        print("applied table inet \(table): \(ruleset.table.chains.count) chains, \(rules) rules, \(ruleset.table.sets.count) sets")

        let policyPath = URL(fileURLWithPath: policy).standardizedFileURL.path
        let exe = Self.executable()

        // 2. watch, before the proxy: with the DNS filter, the proxy's own lookups go through it.
        if !loaded.policy.directHostNames.isEmpty || loaded.policy.dns.filter {
            try startWatch([exe, "watch", policyPath] + (kernel.netns.map { ["--netns", $0] } ?? []), table: table,
                           filter: loaded.policy.dns.filter)
        } else if let previous = Self.previousDaemon(Self.runFile("watch", table: table, suffix: "pid"), kind: "watch") {
            // The new policy has nothing for watch to do.
            stop(previous, kind: "watch")
        }

        guard let proxy = loaded.policy.proxy else {
            print("no [proxy] section: nothing to start (\(Self.elapsed(since: started)))")
            return
        }

        // 3. The CA, owned by the proxy user.
        let owner = try CA.owner(proxy, policy)
        do {
            let (_, created) = try CertificateAuthority.initialize(caDir: proxy.caDir, caCert: proxy.caCert, owner: owner)
            if created { print("created CA in \(proxy.caDir); certificate at \(proxy.caCert)") }
        } catch {
            Output.error("fwctl up: CA: \(error); the firewall is applied, the proxy was not started")
            throw Exit.differences.code
        }
        try prepareAccessLog(proxy, owner: owner)

        // 4. The new proxy, next to the previous one: both bind with SO_REUSEPORT, so the
        //    ports are never free for another user to take in between. The previous one is
        //    stopped once the new one has said it serves.
        let pidFile = Self.pidFile(table: table)
        let previous = Self.previousDaemon(pidFile)
        let argv = [exe, "proxy", policyPath] + (kernel.netns.map { ["--netns", $0] } ?? [])
        if foreground {
            if let previous { stop(previous) }
            print("starting the proxy in the foreground (\(Self.elapsed(since: started)))")
            fflush(stdout)
            let cArgs = argv.map { strdup($0) } + [nil]
            execv(exe, cArgs)
            Output.error("fwctl up: cannot run \(exe): \(String(cString: strerror(errno)))")
            throw Exit.differences.code
        }
        var (pid, ready) = try startAndWait(argv)
        if !ready, let previous, Self.running(previous) {
            // A previous proxy from a release without SO_REUSEPORT holds the ports: stop it
            // and try once more.
            stop(previous)
            (pid, ready) = try startAndWait(argv)
        }
        guard ready else {
            Output.error("fwctl up: the proxy did not come up; the firewall is applied, proxied hosts are unreachable. Its output (\(log)):")
            Output.error(Self.tail(log))
            throw Exit.differences.code
        }
        try? FileManager.default.createDirectory(atPath: Self.runDirectory, withIntermediateDirectories: true)
        try? "\(pid)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        if let previous, previous != pid { stop(previous) }

        let listeners = [proxy.listen] + proxy.endpoints.map(\.listen)
            + (proxy.transparent ? [SocketEndpoint(address: IPAddress("127.0.0.1")!, port: proxy.transparentPort)] : [])
        print("proxy ready (pid \(pid), as \(proxy.user.map { "user \($0)" } ?? "this user")) on \(listeners.map(\.description).joined(separator: ", ")); output in \(log) (\(Self.elapsed(since: started)))")
    }

    /// Starts the proxy and waits (up to `timeout`) for its ready line on a pipe, written
    /// once every listener is bound. Not ready when it exits or stays silent (then it is
    /// stopped).
    func startAndWait(_ argv: [String], kind: String = "proxy", log: String? = nil) throws -> (pid: pid_t, ready: Bool) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            Output.error("fwctl up: pipe: \(String(cString: strerror(errno)))")
            throw Exit.differences.code
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let pid: pid_t
        do { pid = try spawn(argv, readyFD: fds[1], log: log ?? self.log) } catch { close(fds[0]); close(fds[1]); throw error }
        close(fds[1])
        defer { close(fds[0]) }
        var line: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var p = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            Output.progress("waiting for \(kind) (pid \(pid))")
            guard poll(&p, 1, 100) >= 0 || errno == EINTR else { break }
            guard p.revents != 0 else { continue }
            var buf = [UInt8](repeating: 0, count: 64)
            let n = read(fds[0], &buf, buf.count)
            if n <= 0 { break }   // the proxy exited (or closed the pipe) without a word
            line += buf[0..<n]
            if line.contains(UInt8(ascii: "\n")) {
                Output.endProgress()
                return (pid, String(decoding: line, as: UTF8.self).hasPrefix("ready"))
            }
        }
        Output.endProgress()
        if Self.running(pid) { stop(pid, kind: kind) } else { _ = Self.exited(pid) }
        return (pid, false)
    }

    /// Starts `fwctl watch` in the background next to a previous one (the filter's sockets
    /// use SO_REUSEPORT, granted to the same user only), waits for its ready line (its first
    /// round is done, the filter listens), then stops the previous one.
    func startWatch(_ argv: [String], table: String, filter: Bool) throws {
        let pidFile = Self.runFile("watch", table: table, suffix: "pid")
        let previous = Self.previousDaemon(pidFile, kind: "watch")
        var (pid, ready) = try startAndWait(argv, kind: "watch", log: watchLog)
        if !ready, let previous, Self.running(previous) {
            stop(previous, kind: "watch")
            (pid, ready) = try startAndWait(argv, kind: "watch", log: watchLog)
        }
        guard ready else {
            let effect = filter ? "DNS queries get no answer" : "addresses that change in DNS will be refused"
            Output.error("fwctl up: watch did not come up; the firewall is applied, \(effect). Its output (\(watchLog)):")
            Output.error(Self.tail(watchLog))
            throw Exit.differences.code
        }
        try? FileManager.default.createDirectory(atPath: Self.runDirectory, withIntermediateDirectories: true)
        try? "\(pid)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        if let previous, previous != pid { stop(previous, kind: "watch") }
        print("watch ready (pid \(pid))\(filter ? ", DNS filter on" : ""); output in \(watchLog)")
    }

    // MARK: - Fail closed

    /// Leaves the table in place when there is one (the last policy that applied), and puts
    /// a lockdown table in when there is none. DNS stays open to the policy's servers (or
    /// resolv.conf's), so a corrected policy can be applied.
    func failClosed(table: String, reason: String, dns: [SocketEndpoint]?) {
        if (try? KernelReader.read(table: table)) != nil {
            Output.error("fwctl up: \(reason); the table inet \(table) applied before stays in place")
            return
        }
        do {
            let servers = dns ?? ((try? SystemResolvers.nameservers(resolvConf: Pipeline.resolvConf)) ?? [])
            try Kernel.apply(Compiler.lockdown(table: table, reason: reason, dnsServers: servers))
            Output.error("fwctl up: \(reason); the firewall is closed: lockdown table inet \(table) (loopback and existing connections only) until `fwctl up` succeeds")
        } catch {
            Output.error("fwctl up: \(reason), and the lockdown table could not be applied either: \(error)")
        }
    }

    // MARK: - The proxy process

    /// One per network namespace (named by its inode, which `--netns NAME`, a path and
    /// `ip netns exec` all agree on) and table.
    static func pidFile(table: String) -> String { runFile("proxy", table: table, suffix: "pid") }

    /// /run/fwctl/KIND-netnsINODE-TABLE.SUFFIX
    static func runFile(_ kind: String, table: String, suffix: String) -> String {
        var st = stat()
        let ns = stat("/proc/self/ns/net", &st) == 0 ? "\(st.st_ino)" : "unknown"
        return "\(runDirectory)/\(kind)-netns\(ns)-\(table).\(suffix)"
    }

    /// The pid of the proxy a previous `up` started, when that process still is an fwctl
    /// proxy (a stale pid may belong to anything now).
    static func previousDaemon(_ pidFile: String, kind: String = "proxy") -> pid_t? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 else { return nil }
        let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        let args = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard args.count >= 2, args[0].hasSuffix("fwctl"), args[1] == kind, running(pid) else { return nil }
        return pid
    }

    /// SIGTERM (the proxy stops accepting and drains for up to 5 s), SIGKILL after 7 s.
    func stop(_ pid: pid_t, kind: String = "proxy") {
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(7)
        while Self.running(pid) && Date() < deadline { usleep(5_000) }
        if Self.running(pid) {
            kill(pid, SIGKILL)
            while Self.running(pid) { usleep(5_000) }
        }
        _ = Self.exited(pid)
        print("stopped the previous \(kind) (pid \(pid))")
    }

    /// In its own session (it outlives this command), stdin from /dev/null, output appended
    /// to `log`.
    func spawn(_ argv: [String], readyFD: Int32, log: String) throws -> pid_t {
        try? FileManager.default.createDirectory(atPath: (log as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // O_NOFOLLOW: root never appends to where a symlink in the log's place points.
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0o640)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_adddup2(&actions, readyFD, 3)   // dup2 clears close-on-exec
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // POSIX_SPAWN_SETSID (glibc, _GNU_SOURCE only, so not imported): a session of its own.
        posix_spawnattr_setflags(&attr, 0x80)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        var env = ProcessInfo.processInfo.environment.filter { $0.key != Proxy.readyVariable }
            .map { "\($0.key)=\($0.value)" } + ["\(Proxy.readyVariable)=3"]
        let cEnv = env.map { strdup($0) } + [nil]
        defer { cEnv.forEach { free($0) } }
        env.removeAll()
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, cArgs, cEnv)
        guard rc == 0 else {
            Output.error("fwctl up: cannot start \(argv[0]): \(String(cString: strerror(rc))); the firewall is applied")
            throw Exit.differences.code
        }
        return pid
    }

    /// The access log's directory and file belong to the proxy user, who writes them after
    /// dropping privileges.
    func prepareAccessLog(_ proxy: ProxySettings, owner: (uid: uid_t, gid: gid_t)?) throws {
        guard let path = proxy.accessLog, let owner else { return }
        let dir = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Opened without following a symlink, checked to be a plain file, changed through
        // the descriptor: a symlink put in its place cannot make root give away another file.
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o640)
        var st = stat()
        guard fd >= 0, fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, fchown(fd, owner.uid, owner.gid) == 0 else {
            let why = fd < 0 && errno == ELOOP ? "it is a symlink" : String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            Output.error("fwctl up: cannot give the access log \(path) to the proxy user: \(why)")
            throw Exit.differences.code
        }
        close(fd)
    }

    static func executable() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        return n > 0 ? String(cString: buf) : CommandLine.arguments[0]
    }

    /// Alive and not a zombie: the proxy's parent (an earlier `up`) is gone, so reaping it
    /// is up to the system's init, which may take its time.
    static func running(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    static func exited(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid
    }

    static func tail(_ path: String, lines: Int = 10) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    static func elapsed(since start: Date) -> String {
        String(format: "%.2f s", Date().timeIntervalSince(start))
    }
}
