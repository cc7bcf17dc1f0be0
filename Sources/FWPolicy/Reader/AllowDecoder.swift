/// One `[[allow]]` entry and the rules that tie its keys together.
struct AllowDecoder {
    let ctx: ReadContext
    let hasProxy: Bool

    static let keys = ["host", "cidr", "github_meta", "ports", "protocol", "via", "optional",
                       "methods", "paths", "inject"]
    static let methodNames = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]

    func decode(_ t: TableReader, index: Int) -> AllowRule? {
        let path = t.path
        let via = t.choice("via", AllowRule.Via.self) ?? .direct
        let proto = t.choice("protocol", TransportProtocol.self) ?? .tcp
        let target = self.target(t)

        var rule = target.map { AllowRule(index: index, target: $0) }
        rule?.via = via
        rule?.proto = proto
        if let ports = t.array("ports", nonEmpty: true, port) { rule?.ports = ports }
        if let o = t.bool("optional") { rule?.optional = o }

        // What only the proxy can enforce.
        let proxyOnly = ["methods", "paths", "inject"].filter(t.has)
        if via == .direct {
            for key in proxyOnly {
                ctx.keyError(path.key(key), "\(key) needs via = \"proxy\" (only the proxy sees methods, paths and headers)")
            }
            if case .host(let h)? = target, h.isWildcard {
                ctx.error(path.key("host"), "wildcard \"\(h)\" needs via = \"proxy\" (the kernel cannot match names; only the proxy can)")
            }
        } else {
            if !hasProxy {
                ctx.error(path.key("via"), "via = \"proxy\" needs a [proxy] section")
            }
            if proto == .udp {
                ctx.error(path.key("protocol"), "via = \"proxy\" works for tcp only (the proxy speaks HTTP)")
            }
            switch target {
            case .cidr?, .githubMeta?:
                ctx.error(path.key("via"), "via = \"proxy\" needs host (the proxy allows by name, not by address)")
            default: break
            }
            rule?.methods = t.array("methods", nonEmpty: true, method)
            rule?.paths = t.array("paths", nonEmpty: true, pathGlob)
            rule?.inject = t.array("inject") { node, p in
                TableReader.make(node, at: p, allowed: ["header", "placeholder", "secret", "format"], ctx: ctx).flatMap(inject)
            } ?? []
        }
        t.finish()
        return rule
    }

    private func target(_ t: TableReader) -> AllowRule.Target? {
        let given = ["host", "cidr", "github_meta"].filter(t.has)
        guard given.count == 1 else {
            if given.isEmpty {
                ctx.keyError(t.path, "needs exactly one of host, cidr, github_meta (none given)")
            } else {
                ctx.keyError(t.path.key(given[1]), "needs exactly one of host, cidr, github_meta (\(given.joined(separator: " and ")) given)")
            }
            return nil
        }
        switch given[0] {
        case "host":
            guard let s = t.string("host") else { return nil }
            switch HostPattern.parse(s) {
            case .success(let h): return .host(h)
            case .failure(let e): ctx.error(t.path.key("host"), e.description); return nil
            }
        case "cidr":
            guard let list = t.array("cidr", nonEmpty: true, cidr) else {
                if case .string(let s)? = t.node("cidr") {
                    // The array error is already reported; a hint helps the common slip.
                    ctx.error(t.path.key("cidr"), "write cidr = [\"\(s)\"]")
                }
                return nil
            }
            return .cidr(list)
        default:
            guard let file = t.string("github_meta") else { return nil }
            switch GitHubMeta.load(file, relativeTo: ctx.baseDirectory) {
            case .success(let cidrs): return .githubMeta(path: file, cidrs: cidrs)
            case .failure(let e): ctx.error(t.path.key("github_meta"), e.description); return nil
            }
        }
    }

    private func cidr(_ node: TOMLNode, _ p: KeyPath) -> CIDR? {
        guard case .string(let s) = node else {
            ctx.error(p, "expected a string such as \"192.0.2.0/24\", found \(node.kindName)")
            return nil
        }
        switch CIDR.parse(s) {
        case .success(let c): return c
        case .failure(let e):
            if case .prefixTooLong = e { ctx.error(p, "\"\(s)\" \(e.description)") } else { ctx.error(p, e.description) }
            return nil
        }
    }

    private func port(_ node: TOMLNode, _ p: KeyPath) -> PortRange? {
        let r: Result<PortRange, PortRange.ParseError>
        switch node {
        case .integer(let i): r = PortRange.parse(number: i)
        case .string(let s): r = PortRange.parse(s)
        default:
            ctx.error(p, "expected a port number or a range such as \"8000-8100\", found \(node.kindName)")
            return nil
        }
        switch r {
        case .success(let pr): return pr
        case .failure(let e): ctx.error(p, e.description); return nil
        }
    }

    private func method(_ node: TOMLNode, _ p: KeyPath) -> String? {
        guard case .string(let s) = node, Self.methodNames.contains(s.uppercased()) else {
            ctx.error(p, "\(node.kindName) is not an HTTP method (allowed: \(Self.methodNames.joined(separator: ", ")))")
            return nil
        }
        return s.uppercased()
    }

    private func pathGlob(_ node: TOMLNode, _ p: KeyPath) -> String? {
        guard case .string(let s) = node, s.hasPrefix("/"),
              !s.contains(where: { $0 == " " || $0 == "?" || $0 == "#" || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7f } == true }) else {
            ctx.error(p, "\(node.kindName) is not a path glob (allowed: starting with \"/\", \"*\" as wildcard, no query, spaces or control characters)")
            return nil
        }
        return s
    }

    private func inject(_ t: TableReader) -> Inject? {
        for key in ["header", "placeholder", "secret"] where !t.has(key) {
            ctx.keyError(t.path.key(key), "missing")
        }
        let header = t.string("header").flatMap { h -> String? in
            let token = !h.isEmpty && h.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "!#$%&'*+-.^_`|~".unicodeScalars.contains($0)) }
            if !token { ctx.error(t.path.key("header"), "\"\(h)\" is not a valid header name") }
            return token ? h.lowercased() : nil
        }
        let placeholder = t.string("placeholder").flatMap { p -> String? in
            guard p.count >= 8, p.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
                ctx.error(t.path.key("placeholder"), "must be at least 8 visible ASCII characters with no spaces, so it cannot be mistaken for a real value")
                return nil
            }
            return p
        }
        let secret = t.string("secret").flatMap { s -> Inject.Secret? in
            if s.hasPrefix("env:"), ProxyDecoder.isValidEnvName(String(s.dropFirst(4))) { return .env(String(s.dropFirst(4))) }
            if s.hasPrefix("file:/"), s.count > 6 { return .file(String(s.dropFirst(5))) }
            // Never echo the value: it may be the secret itself, pasted by mistake.
            ctx.error(t.path.key("secret"), "must be \"env:NAME\" or \"file:/absolute/path\" (the value is not shown, in case it is a secret)")
            return nil
        }
        var format = "{}"
        if let f = t.string("format") {
            if f.components(separatedBy: "{}").count == 2 { format = f } else {
                ctx.error(t.path.key("format"), "\"\(f)\" must contain \"{}\" exactly once (e.g. \"Bearer {}\")")
            }
        }
        t.finish()
        guard let h = header, let p = placeholder, let s = secret else { return nil }
        return Inject(header: h, placeholder: p, secret: s, format: format)
    }
}

/// Duplicates are legal but usually a slip; each gets a warning naming the first entry.
struct DuplicateCheck {
    let ctx: ReadContext

    func run(_ rules: [AllowRule]) {
        var hosts: [String: Int] = [:]
        var cidrs: [CIDR: Int] = [:]
        cidrs.reserveCapacity(rules.reduce(0) { $0 + $1.cidrs.count })
        for r in rules {
            let path = KeyPath([.key("allow"), .index(r.index)])
            switch r.target {
            case .host(let h):
                let key = "\(h)|\(r.proto)|\(r.via)"
                if let first = hosts[key] {
                    ctx.warning(path.key("host"), "\"\(h)\" is also allowed by allow[\(first)]; the ports of both apply")
                } else { hosts[key] = r.index }
            case .cidr(let list):
                for (i, c) in list.enumerated() {
                    if let first = cidrs[c] {
                        ctx.warning(path.key("cidr").index(i), "\(c) is also listed by allow[\(first)]")
                    } else { cidrs[c] = r.index }
                }
            case .githubMeta: break
            }
            var seen = Set<PortRange>()
            for (i, p) in r.ports.enumerated() where !seen.insert(p).inserted {
                ctx.warning(path.key("ports").index(i), "port \(p) is listed twice")
            }
            let merged = PortRange.merge(r.ports)
            if merged.count < Set(r.ports).count {
                ctx.warning(path.key("ports"), "port ranges overlap; they are merged to \(merged.map(\.description).joined(separator: ", "))")
            }
        }
    }
}
