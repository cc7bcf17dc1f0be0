/// The `[proxy]` section and its `[[proxy.endpoint]]` entries.
struct ProxyDecoder {
    let ctx: ReadContext

    func decode(_ t: TableReader) -> ProxySettings {
        var p = ProxySettings()
        if let e = listen(t, "listen") { p.listen = e }
        if let n = t.node("user") {
            switch n {
            case .string(let s) where Self.isValidUserName(s): p.user = .name(s)
            case .integer(let i) where (0...Int(UInt32.max - 1)).contains(i): p.user = .uid(UInt32(i))
            default:
                ctx.error(t.path.key("user"), "\(n.kindName) is not a user (allowed: a user name such as \"fwproxy\" or a numeric uid)")
            }
            if case .name("root")? = p.user { rootWarning(t) }
            if case .uid(0)? = p.user { rootWarning(t) }
        }
        if let b = t.bool("transparent") {
            p.transparent = b
            if b && p.user == nil && t.node("user") == nil {
                ctx.error(t.path.key("transparent"),
                    "true needs proxy.user: the proxy's own connections must be told apart, or they would be redirected back to it (allowed: set user, or transparent = false)")
            }
        }
        if let v = t.int("transparent_port", in: 1...65535) { p.transparentPort = UInt16(v) }
        if let s = path(t, "ca_dir") { p.caDir = s }
        if let s = path(t, "ca_cert") { p.caCert = s }
        if let s = path(t, "upstream_ca") { p.upstreamCA = s }
        if let v = t.int("max_body_bytes", in: 1...Int(Int32.max) * 2) { p.maxBodyBytes = v }
        if let s = path(t, "access_log") { p.accessLog = s }
        if let eps = t.array("endpoint", { node, path in
            TableReader.make(node, at: path, allowed: ["listen", "target", "env"], ctx: ctx).flatMap(endpoint)
        }) {
            p.endpoints = eps
            var seen = [SocketEndpoint: Int]()
            for (i, e) in eps.enumerated() {
                if let j = seen[e.listen] {
                    ctx.error(t.path.key("endpoint").index(i).key("listen"), "\(e.listen) is already used by proxy.endpoint[\(j)]")
                } else if e.listen == p.listen {
                    ctx.error(t.path.key("endpoint").index(i).key("listen"), "\(e.listen) is already proxy.listen")
                }
                seen[e.listen] = i
            }
        }
        t.finish()
        return p
    }

    private func rootWarning(_ t: TableReader) {
        ctx.warning(t.path.key("user"), "the proxy user is root: every root process may then reach proxied destinations directly")
    }

    private func endpoint(_ t: TableReader) -> ProxyEndpoint? {
        let listen = self.listen(t, "listen")
        if !t.has("listen") { ctx.keyError(t.path.key("listen"), "missing (e.g. listen = \"127.0.0.1:3129\")") }
        var target: TargetURL?
        if let s = t.string("target") {
            target = Self.parseTarget(s)
            if target == nil {
                ctx.error(t.path.key("target"), "\"\(s)\" is not a valid target (allowed: \"https://HOST[:PORT][/PATH]\", e.g. \"https://api.anthropic.com\")")
            }
        } else if !t.has("target") {
            ctx.keyError(t.path.key("target"), "missing (e.g. target = \"https://api.anthropic.com\")")
        }
        var env: String?
        if let s = t.string("env") {
            if Self.isValidEnvName(s) { env = s } else {
                ctx.error(t.path.key("env"), "\"\(s)\" is not a valid variable name (allowed: letters, digits and _, not starting with a digit)")
            }
        }
        t.finish()
        guard let l = listen, let tg = target else { return nil }
        return ProxyEndpoint(listen: l, target: tg, env: env)
    }

    private func listen(_ t: TableReader, _ key: String) -> SocketEndpoint? {
        guard let s = t.string(key) else { return nil }
        switch SocketEndpoint.parse(s, defaultPort: nil) {
        case .success(let e): return e
        case .failure(let e): ctx.error(t.path.key(key), e.description); return nil
        }
    }

    private func path(_ t: TableReader, _ key: String) -> String? {
        guard let s = t.string(key) else { return nil }
        if s.isEmpty || s.contains("\0") {
            ctx.error(t.path.key(key), "must be a file path")
            return nil
        }
        return s
    }

    /// "https://host[:port][/path]"; plain http is accepted for targets inside a lab.
    static func parseTarget(_ s: String) -> TargetURL? {
        let scheme: String
        var rest: Substring
        if s.hasPrefix("https://") { scheme = "https"; rest = s.dropFirst(8) }
        else if s.hasPrefix("http://") { scheme = "http"; rest = s.dropFirst(7) }
        else { return nil }
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
            if path == "/" { path = "" }
        }
        guard !path.contains("?"), !path.contains("#"), !rest.contains("@") else { return nil }
        var port: UInt16 = scheme == "https" ? 443 : 80
        var hostText = String(rest)
        if let colon = rest.lastIndex(of: ":") {
            guard let p = Int(rest[rest.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = UInt16(p)
            hostText = String(rest[..<colon])
        }
        guard case .success(let host) = HostPattern.parse(hostText), !host.isWildcard else { return nil }
        return TargetURL(scheme: scheme, host: host, port: port, path: path)
    }

    static func isValidUserName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, s.count <= 32, f.isASCII,
              f.properties.isLowercase || f == "_" else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isLowercase || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") }
    }

    static func isValidEnvName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, !("0"..."9").contains(f) else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
    }
}
