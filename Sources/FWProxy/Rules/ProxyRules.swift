import FWPolicy

/// The proxy's decisions that need nothing but the policy: which entry a host gets, whether
/// an identity holds, whether a method and path pass. Pure logic; the server calls it.
public struct ProxyRules: Sendable {
    /// The `via = "proxy"` host allows, in policy order.
    public let entries: [ProxyEntry]

    public init(policy: Policy) {
        entries = policy.allows.compactMap(ProxyEntry.init)
    }

    public init(entries: [ProxyEntry]) { self.entries = entries }

    /// The entry for a CONNECT target, absolute URL, Host header or SNI (`host` without
    /// the port).
    ///
    /// - IP literals in any form (dotted, IPv6, bracketed, zone id, IPv4-mapped, inet_aton
    ///   forms such as "3221225985" or "0300.0.2.1") are refused (`.ipLiteral`, 403).
    /// - Matching is `HostPattern.matches`: case-insensitive, trailing dot ignored,
    ///   `*.example.com` for strict subdomains only.
    /// - When several entries match, the most specific wins: an exact name before a
    ///   wildcard, a longer wildcard suffix before a shorter one, then policy order. Among
    ///   equally specific entries the first whose ports hold `port` is taken.
    /// - No entry: `.hostNotAllowed`; entries, but none with the port: `.portNotAllowed`.
    public func entry(host: String, port: UInt16) -> Result<ProxyEntry, Refusal> {
        switch HostName.classify(host) {
        case .ipLiteral(let address):
            let decoded = address.map { a in a.description == host ? "" : " (\(a))" } ?? ""
            return .failure(Refusal(.ipLiteral,
                "\(Refusal.quote(host)) is an IP address\(decoded); the proxy allows host names only"))
        case .invalid:
            return .failure(Refusal(.hostNotAllowed, "\(Refusal.quote(host)) is not a valid host name"))
        case .name(let name):
            let candidates = entries.enumerated()
                .filter { $0.element.host.matches(name) }
                .sorted { a, b in
                    let sa = Self.specificity(a.element.host), sb = Self.specificity(b.element.host)
                    return sa != sb ? sa > sb : a.offset < b.offset
                }
                .map(\.element)
            guard let best = candidates.first else {
                return .failure(Refusal(.hostNotAllowed,
                    "host \(Refusal.quote(name)) is not allowed (no [[allow]] with via = \"proxy\" matches it)"))
            }
            if let e = candidates.first(where: { $0.allowsPort(port) }) { return .success(e) }
            let ports = PortRange.merge(candidates.flatMap(\.ports)).map(\.description).joined(separator: ", ")
            return .failure(Refusal(.portNotAllowed,
                "port \(port) is not allowed for \(name) (\(best.label) ports: \(ports))"))
        }
    }

    /// A CONNECT target or Host header split into host and port: "a.example:443" ->
    /// ("a.example", 443), "[2001:db8::1]:443" -> ("[2001:db8::1]", 443), "a.example" ->
    /// ("a.example", nil). The host part is what `entry(host:port:)` takes.
    public static func splitAuthority(_ authority: String) -> (host: String, port: UInt16?) {
        HostName.splitPort(authority)
    }

    /// Exact names rank above every wildcard; wildcards by the length of their suffix.
    private static func specificity(_ h: HostPattern) -> Int {
        h.isWildcard ? h.name.utf8.count : Int.max
    }

    /// The identity rule: `seen` (an SNI, or a Host header that may carry ":port") must name
    /// `identity` (the CONNECT target or, in transparent mode, the SNI). Both are compared
    /// normalized: lower case, no trailing dot. A missing `seen` (no SNI, no Host) is a
    /// mismatch too. When `port` is given and `seen` carries a port, they must agree.
    ///
    /// `what` names the pair for the reason, e.g. "SNI" / "CONNECT target":
    /// `SNI "b.example" does not match the CONNECT target "a.example"`.
    public static func checkIdentity(_ identity: String, seen: String?, what: String,
                                     against: String = "identity", port: UInt16? = nil) -> Refusal? {
        let want = HostPattern.normalize(HostName.splitPort(identity).host) ?? identity.lowercased()
        guard let seen = seen, !seen.isEmpty else {
            return Refusal(.identityMismatch, "no \(what) given; it must be \(Refusal.quote(want)) (the \(against))")
        }
        let (host, seenPort) = HostName.splitPort(seen)
        let got = HostPattern.normalize(host)
        if got != want {
            return Refusal(.identityMismatch,
                "\(what) \(Refusal.quote(seen)) does not match the \(against) \(Refusal.quote(want))")
        }
        if let port = port, let seenPort = seenPort, seenPort != port {
            return Refusal(.identityMismatch,
                "\(what) \(Refusal.quote(seen)) names port \(seenPort), the \(against) port \(port)")
        }
        return nil
    }

    /// Method and path rules of a terminated request, checked on the head.
    ///
    /// - Methods are compared exactly (HTTP methods are case-sensitive; the policy holds
    ///   them upper case).
    /// - `path` is the origin-form request target ("/v1/messages?beta=true"); the query
    ///   (from "?") and any fragment are not part of the path. An absolute-form target
    ///   ("https://host/p") is reduced to its path here; its authority is the caller's to
    ///   check against the identity.
    /// - Globs: `*` matches any run of characters including "/"; everything else is
    ///   literal. The whole path must match.
    /// - No normalization: when the entry has `paths`, a path that an upstream might
    ///   normalize into something else is refused rather than guessed at: a "." or ".."
    ///   segment (also "..;" as Tomcat reads it), a backslash, a percent-encoded ".", "/",
    ///   "\", "%" or NUL (%2e %2f %5c %25 %00, any case), a control or non-ASCII byte, or a
    ///   target that does not start with "/". Other percent-escapes are matched literally.
    public func checkRequest(method: String, path: String, entry: ProxyEntry) -> Refusal? {
        if let methods = entry.methods, !methods.contains(method) {
            return Refusal(.methodNotAllowed,
                "method \(Refusal.quote(method)) is not allowed for \(entry.host) (\(entry.label) methods: \(methods.joined(separator: ", ")))")
        }
        guard let globs = entry.paths else { return nil }
        let p = PathGlob.pathPart(of: path)
        if let problem = PathGlob.ambiguity(in: p) {
            return Refusal(.pathNotAllowed,
                "path \(Refusal.quote(p)) is refused: \(problem) (paths are matched as sent, never normalized)")
        }
        if globs.contains(where: { PathGlob.matches(glob: $0, path: p) }) { return nil }
        return Refusal(.pathNotAllowed,
            "path \(Refusal.quote(p)) is not allowed for \(entry.host) (\(entry.label) paths: \(globs.joined(separator: ", ")))")
    }
}
