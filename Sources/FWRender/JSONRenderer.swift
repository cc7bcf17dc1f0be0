import FWPolicy
import FWRuleset

/// Renders the IR as JSON. The schema is documented in docs/json-schema.md and versioned
/// by the top-level "schema" field; fields are only ever added within a version.
public struct JSONRenderer: Sendable {
    public static let schema = "fwctl.ruleset/1"
    public init() {}

    public func render(_ r: Ruleset) -> String { value(r).render() }

    public func value(_ r: Ruleset) -> JSONValue {
        .object([
            ("schema", .string(Self.schema)),
            ("notes", .array(r.notes.map(JSONValue.string))),
            ("table", .object([
                ("family", .string("inet")),
                ("name", .string(r.table.name)),
                ("comment", r.table.comment.map(JSONValue.string) ?? .null),
                ("sets", .array(r.table.sets.map(set))),
                ("chains", .array(r.table.chains.map(chain))),
            ])),
        ])
    }

    func set(_ s: NamedSet) -> JSONValue {
        .object([
            ("name", .string(s.name)),
            ("type", .string(s.keyType.rawValue)),
            ("flags", .array(s.flags.map { .string($0.rawValue) })),
            ("hosts", .array(s.hosts.map(JSONValue.string))),
            ("elements", .array(s.elements.map { .string($0.longDescription) })),
        ])
    }

    func chain(_ c: Chain) -> JSONValue {
        var fields: [(String, JSONValue)] = [("name", .string(c.name))]
        if let b = c.base {
            fields += [("type", .string(b.type.rawValue)), ("hook", .string(b.hook.rawValue)),
                       ("priority", .int(Int64(b.priority))), ("policy", .string(b.policy.rawValue))]
        }
        fields.append(("rules", .array(c.rules.map(rule))))
        return .object(fields)
    }

    func rule(_ r: Rule) -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("match", .array(r.matches.map(match))),
            ("statements", .array(r.statements.map(statement))),
            ("verdict", r.verdict.map(verdict) ?? .null),
        ]
        if let c = r.comment { fields.append(("comment", .string(c))) }
        return .object(fields)
    }

    func match(_ m: Match) -> JSONValue {
        switch m {
        case .interfaceName(let dir, let name):
            return .object([("kind", .string(dir == .source ? "iifname" : "oifname")), ("value", .string(name))])
        case .ctState(let states):
            return .object([("kind", .string("ct_state")), ("value", .array(states.sorted().map { .string($0.rawValue) }))])
        case .l4proto(let p):
            return .object([("kind", .string("l4proto")), ("value", .string(p.rawValue))])
        case .address(let dir, let fam, let a):
            var fields: [(String, JSONValue)] = [
                ("kind", .string(dir == .source ? "saddr" : "daddr")),
                ("family", .string(fam.rawValue)),
            ]
            switch a {
            case .prefix(let c): fields.append(("prefix", .string(c.longDescription)))
            case .set(let n): fields.append(("set", .string(n)))
            }
            return .object(fields)
        case .port(let proto, let dir, .ranges(let ranges)):
            return .object([("kind", .string(dir == .source ? "sport" : "dport")), ("protocol", .string(proto.rawValue)),
                            ("ports", .array(ranges.map { .string($0.description) }))])
        case .icmpType(let t):
            return .object([("kind", .string("icmp_type")), ("value", .array(t.map { .string($0.rawValue) }))])
        case .icmpv6Type(let t):
            return .object([("kind", .string("icmpv6_type")), ("value", .array(t.map { .string($0.rawValue) }))])
        case .socketUser(.uid(let u)):
            return .object([("kind", .string("skuid")), ("uid", .int(Int64(u)))])
        case .socketUser(.name(let n)):
            return .object([("kind", .string("skuid")), ("user", .string(n))])
        case .mark(let m):
            return .object([("kind", .string("mark")), ("value", .int(Int64(m)))])
        case .socketMark(let m):
            return .object([("kind", .string("socket_mark")), ("value", .int(Int64(m)))])
        case .opaque(let text):
            return .object([("kind", .string("opaque")), ("value", .string(text))])
        }
    }

    func statement(_ s: Statement) -> JSONValue {
        switch s {
        case .counter(let p, let b):
            var fields: [(String, JSONValue)] = [("kind", .string("counter"))]
            if let p, let b { fields += [("packets", .int(Int64(clamping: p))), ("bytes", .int(Int64(clamping: b)))] }
            return .object(fields)
        case .limit(let rate, let per, let burst):
            return .object([("kind", .string("limit")), ("rate", .int(Int64(clamping: rate))),
                            ("per", .string(per.rawValue)), ("burst", .int(Int64(burst)))])
        case .log(let prefix):
            return .object([("kind", .string("log")), ("prefix", .string(prefix))])
        case .redirect(let port):
            return .object([("kind", .string("redirect")), ("port", .int(Int64(port)))])
        case .ctZone(let zone):
            return .object([("kind", .string("ct_zone")), ("direction", .string("original")), ("zone", .int(Int64(zone)))])
        }
    }

    func verdict(_ v: Verdict) -> JSONValue {
        switch v {
        case .accept: return .object([("kind", .string("accept"))])
        case .drop: return .object([("kind", .string("drop"))])
        case .reject(let k):
            return .object([("kind", .string("reject")), ("with", .string(k == .tcpReset ? "tcp_reset" : "icmpx_admin_prohibited"))])
        case .jump(let c): return .object([("kind", .string("jump")), ("target", .string(c))])
        }
    }
}
