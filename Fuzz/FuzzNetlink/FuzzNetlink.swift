// libFuzzer target: the netlink read-back decoder, from the bytes of a kernel dump to the
// IR and its renderings, as `fwctl diff` and `fwctl status` run it: libnftnl's parse of
// each NEWTABLE/NEWCHAIN/NEWSET/NEWSETELEM/NEWRULE message (Dump.decode*), ReadExpr,
// SetReading and RuleLifting (KernelReader.ruleset), then NftRenderer and JSONRenderer.
//
// Input: netlink messages back to back, as NetlinkSocket.receive splits a datagram (each
// message's own nlmsg_len, 4-byte aligned; a length that does not fit ends the input), in
// the order Dump.table reads them: the table (optional: without one, an empty table
// `fwctl` is assumed), chains, each set followed by the NEWSETELEM replies of its element
// dump, rules. Messages of other types are ignored. A message the decoder refuses ends
// the read, as it ends KernelReader.read with an error.
//
// The committed seeds are real kernel dumps: `make-seeds` loads rulesets with nft into a
// throwaway network namespace and captures them with this program's --capture mode.
import CNetfilter
@testable import FWNetlink
import FWRender
import FWRuleset
#if canImport(Glibc)
import Glibc
#endif

let table = "fwctl"

enum Kind { case table, chain, set, elements, rule, other }

func kind(_ type: UInt16) -> Kind {
    guard type >> 8 == UInt16(NFNL_SUBSYS_NFTABLES) else { return .other }
    switch UInt32(type & 0xff) {
    case NFT_MSG_NEWTABLE.rawValue: return .table
    case NFT_MSG_NEWCHAIN.rawValue: return .chain
    case NFT_MSG_NEWSET.rawValue: return .set
    case NFT_MSG_NEWSETELEM.rawValue: return .elements
    case NFT_MSG_NEWRULE.rawValue: return .rule
    default: return .other
    }
}

/// The messages in `bytes`, as NetlinkSocket.receive cuts them out of a datagram.
func messages(_ bytes: [UInt8]) -> [NetlinkMessage] {
    var out: [NetlinkMessage] = []
    var offset = 0
    let headerSize = MemoryLayout<nlmsghdr>.size
    while offset + headerSize <= bytes.count {
        let header = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: nlmsghdr.self) }
        let len = Int(header.nlmsg_len)
        guard len >= headerSize, offset + len <= bytes.count else { break }
        out.append(NetlinkMessage(type: header.nlmsg_type, flags: header.nlmsg_flags, seq: header.nlmsg_seq,
                                  bytes: Array(bytes[offset..<offset + len])))
        offset += (len + 3) & ~3
    }
    return out
}

/// What Dump.table would return for these replies, or nil when it would throw.
func decode(_ msgs: [NetlinkMessage]) -> TableDump? {
    var dump = TableDump(name: table)
    var sawTable = false
    var elementReplies: [[NetlinkMessage]] = []
    do {
        for m in msgs {
            switch kind(m.type) {
            case .table:
                // Only the first reply to the GETTABLE request is read.
                guard !sawTable else { continue }
                sawTable = true
                guard let t = try Dump.decodeTable(m, name: table) else { return nil }
                dump = t
            case .chain:
                if let c = try Dump.decodeChain(m, table: table) { dump.chains.append(c) }
            case .set:
                if let s = try Dump.decodeSet(m, table: table) {
                    dump.sets.append(s)
                    elementReplies.append([])
                }
            case .elements:
                if !elementReplies.isEmpty { elementReplies[elementReplies.count - 1].append(m) }
            case .rule:
                if let r = Dump.decodeRule(m, table: table) { dump.rules.append(r) }
            case .other:
                continue
            }
        }
        for i in dump.sets.indices {
            dump.sets[i].elements = try Dump.decodeElements(elementReplies[i], set: dump.sets[i].name)
        }
    } catch {
        return nil
    }
    return dump
}

/// An attribute: a leaf with its payload, or (when its payload reads exactly as
/// attributes, as every nested attribute the kernel sends does) a nest.
final class Attr {
    var type: UInt16
    var payload: [UInt8]
    var children: [Attr]?
    init(type: UInt16, payload: [UInt8], children: [Attr]?) { self.type = type; self.payload = payload; self.children = children }

    var bytes: [UInt8] {
        let body = children.map { $0.flatMap { $0.bytes } } ?? payload
        let len = 4 + body.count
        var out = [UInt8(len & 0xff), UInt8(len >> 8), UInt8(type & 0xff), UInt8(type >> 8)] + body
        out += [UInt8](repeating: 0, count: (4 - out.count % 4) % 4)
        return out
    }

    /// Exactly a sequence of attributes, or nil.
    static func list(_ b: ArraySlice<UInt8>) -> [Attr]? {
        var out: [Attr] = []
        var i = b.startIndex
        while i < b.endIndex {
            guard b.endIndex - i >= 4 else { return nil }
            let len = Int(b[i]) | Int(b[i + 1]) << 8
            guard len >= 4, i + len <= b.endIndex, len <= 0xffff else { return nil }
            let type = UInt16(b[i + 2]) | UInt16(b[i + 3]) << 8
            let payload = b[(i + 4)..<(i + len)]
            let nested = payload.count >= 4 ? list(payload) : nil
            out.append(Attr(type: type, payload: Array(payload), children: nested))
            i += min((len + 3) & ~3, b.endIndex - i)
        }
        return out.isEmpty ? nil : out
    }
}

/// What the kernel never sends and libnftnl 1.2.4 cannot read safely (found by this
/// target, see Fuzz/README.md): an expression without its name (a NULL dereference in
/// nftnl_expr_parse), and an immediate's verdict without its code, or a jump or goto
/// without its chain (nftnl_parse_verdict then reads its uninitialized attribute table).
/// Such inputs are skipped: they would find libnftnl's bugs, not fwctl's.
func kernelCouldSend(_ msgs: [NetlinkMessage]) -> Bool {
    func child(_ a: Attr?, _ type: UInt16) -> Attr? { a?.children?.first { $0.type & 0x3fff == type } }
    for m in msgs where kind(m.type) == .rule && m.bytes.count > 20 {
        guard let top = Attr.list(m.bytes[20...]) else { continue }
        for list in top where list.type & 0x3fff == UInt16(NFTA_RULE_EXPRESSIONS.rawValue) {
            for expr in list.children ?? [] {
                guard let name = child(expr, 1) else { return false }
                guard name.payload == Array("immediate".utf8) + [0] else { continue }
                guard let verdict = child(child(child(expr, 2), 2), 2), verdict.children != nil else { continue }
                guard let code = child(verdict, 1), code.payload.count == 4 else { return false }
                let jumps = code.payload == [0xff, 0xff, 0xff, 0xfd] || code.payload == [0xff, 0xff, 0xff, 0xfc]
                if jumps, child(verdict, 2) == nil { return false }
            }
        }
    }
    return true
}

let renderers: [(Ruleset) -> String] = [
    { NftRenderer(options: .comparison).render($0) },                           // diff
    { NftRenderer(options: .init(counters: true, notes: true)).render($0) },   // status
    { JSONRenderer().render($0) },                                              // status --json
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let msgs = messages(bytes)
    guard kernelCouldSend(msgs) else { return -1 }
    guard let dump = decode(msgs) else { return 0 }
    let ruleset = KernelReader.ruleset(dump)
    // Chains keep their order and no rule of a known chain is dropped (RuleLifting makes an
    // opaque rule of what it cannot lift; a chain fwctl cannot express gets one more).
    precondition(ruleset.table.chains.map(\.name) == dump.chains.map(\.name))
    let known = Set(dump.chains.map(\.name))
    let lifted = ruleset.table.chains.reduce(0) { $0 + $1.rules.count }
    precondition(lifted >= dump.rules.filter { known.contains($0.chain) }.count, "a rule was dropped")
    for render in renderers { _ = render(ruleset) }
    return 0
}

#if FUZZING
// MARK: - A mutator that keeps every attribute well-formed
//
// libnftnl does not return an error for an attribute of the wrong size or without its
// NUL: it prints "nf_tables kernel ABI is broken, contact your vendor." and calls exit(1)
// (its __abi_breakage, internal, so it cannot be interposed). libFuzzer's byte mutations
// would hit that on almost every input and never get past it. So this target brings its
// own mutator: it changes values inside attributes, never the size of one that may hold a
// number, never the NUL that ends a string, never an expression's name (which selects
// how libnftnl checks its data, and which libnftnl assumes is there), and otherwise
// drops, repeats, reorders and swaps between inputs whole attributes and messages, fixing
// every length on the way out.
// libFuzzer's own mutations (with its dictionary and comparison hints) still pick the new
// values, through LLVMFuzzerMutate.

@_silgen_name("LLVMFuzzerMutate")
func LLVMFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int) -> Int

struct Message {
    var header: [UInt8]      // nlmsghdr + nfgenmsg
    var attrs: [Attr]?       // nil: not attributes after all; the message is kept as it is
    var raw: [UInt8]

    var bytes: [UInt8] {
        guard let attrs else { return raw }
        var out = header + attrs.flatMap { $0.bytes }
        let len = UInt32(out.count)
        out[0] = UInt8(len & 0xff); out[1] = UInt8(len >> 8 & 0xff); out[2] = UInt8(len >> 16 & 0xff); out[3] = UInt8(len >> 24)
        return out
    }

    static func all(_ bytes: [UInt8]) -> [Message] {
        messages(bytes).map { m in
            m.bytes.count >= 20
                ? Message(header: Array(m.bytes[0..<20]), attrs: Attr.list(m.bytes[20...]), raw: m.bytes)
                : Message(header: m.bytes, attrs: nil, raw: m.bytes)
        }
    }
}

struct Rng {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}

/// Every attribute, with the list it is in and whether its size is fixed: when it, or a
/// nest around it, may be a number (a payload that merely reads as attributes).
func walk(_ list: [Attr], fixed: Bool = false, _ visit: (Attr, [Attr], Bool) -> Void) {
    for a in list {
        let f = fixed || mayBeNumber(a.payload.count)
        visit(a, list, f)
        if let c = a.children { walk(c, fixed: f, visit) }
    }
}

/// NFTA_EXPR_NAME (1) next to NFTA_EXPR_DATA (2, nested): it decides how the data is read.
func isExpressionName(_ a: Attr, in list: [Attr]) -> Bool {
    a.type & 0x3fff == 1 && a.children == nil && list.contains { $0.type & 0x3fff == 2 && $0.children != nil }
}

/// A payload that may be a u8, u16, u32 or u64 keeps its size.
func mayBeNumber(_ count: Int) -> Bool { [1, 2, 4, 8].contains(count) }

func mutateValue(_ a: Attr, resize: Bool, _ rng: inout Rng) {
    let keepNUL = a.payload.last == 0
    var body = keepNUL ? Array(a.payload.dropLast()) : a.payload
    let size = body.count
    let maxSize = resize ? size * 2 + 16 : size
    guard maxSize > 0 else { return }
    body += [UInt8](repeating: 0, count: maxSize - size)
    var n = body.withUnsafeMutableBufferPointer { LLVMFuzzerMutate($0.baseAddress!, size, maxSize) }
    if !resize, n < size { // the same size: what was cut comes back from the old value
        for i in n..<size { body[i] = a.payload[i] }
        n = size
    }
    if !resize { n = size }
    var out = Array(body[0..<n])
    if keepNUL { out.append(0) }
    if out.isEmpty { out = [0] }
    a.payload = out
    a.children = nil
}

func mutate(_ msgs: inout [Message], _ rng: inout Rng) {
    guard !msgs.isEmpty else { return }
    let m = rng.below(msgs.count)
    // Message-level changes, now and then.
    switch rng.below(16) {
    case 0 where msgs.count > 1: msgs.remove(at: m); return
    case 1: msgs.insert(msgs[m], at: rng.below(msgs.count + 1)); return
    case 2 where msgs.count > 1: msgs.swapAt(m, rng.below(msgs.count)); return
    default: break
    }
    guard let attrs = msgs[m].attrs else { return }
    var values: [(attr: Attr, fixed: Bool)] = []
    var lists: [Attr] = []          // nests whose children may change
    walk(attrs) { a, list, fixed in
        if let c = a.children {
            if !c.isEmpty, !fixed { lists.append(a) }
        } else if !a.payload.isEmpty, !isExpressionName(a, in: list) {
            // (An empty payload may be an empty nest, which must stay empty.)
            values.append((a, fixed))
        }
    }
    let choice = rng.below(10)
    if choice < 6 || lists.isEmpty {
        guard !values.isEmpty else { return }
        let v = values[rng.below(values.count)]
        mutateValue(v.attr, resize: choice >= 4 && !v.fixed, &rng)
    } else {
        let nest = lists[rng.below(lists.count)]
        var c = nest.children!
        let i = rng.below(c.count)
        switch rng.below(3) {
        case 0:
            // Never attribute 1: it is an expression's name, which libnftnl 1.2.4 reads
            // without checking it is there (a NULL dereference in nftnl_expr_parse; the
            // kernel always sends one), or what names a table, chain, set or key.
            if c[i].type & 0x3fff != 1 { c.remove(at: i) }
        case 1: c.insert(c[i], at: rng.below(c.count + 1))
        default: c.swapAt(i, rng.below(c.count))
        }
        nest.children = c
    }
    msgs[m].attrs = attrs
}

/// The expressions (NFTA_LIST_ELEM of NFTA_RULE_EXPRESSIONS) of a rule message.
func expressionList(_ m: Message) -> Attr? {
    guard kind(m.header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt16.self) }) == .rule else { return nil }
    return m.attrs?.first { $0.type & 0x3fff == UInt16(NFTA_RULE_EXPRESSIONS.rawValue) && $0.children != nil }
}

func write(_ msgs: [Message], to data: UnsafeMutablePointer<UInt8>, maxSize: Int) -> Int? {
    let out = msgs.flatMap { $0.bytes }
    guard out.count <= maxSize, !out.isEmpty else { return nil }
    out.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: out.count) }
    return out.count
}

@_cdecl("LLVMFuzzerCustomMutator")
public func customMutator(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    var rng = Rng(state: UInt64(seed) | 1 << 40)
    var msgs = Message.all(Array(UnsafeBufferPointer(start: data, count: size)))
    for _ in 0...rng.below(3) { mutate(&msgs, &rng) }
    return write(msgs, to: data, maxSize: maxSize) ?? size
}

/// Crossover by whole parts: a message of the second input into the first, or one of its
/// expressions into a rule of the first.
@_cdecl("LLVMFuzzerCustomCrossOver")
public func customCrossOver(_ data1: UnsafePointer<UInt8>, _ size1: Int, _ data2: UnsafePointer<UInt8>, _ size2: Int,
                            _ out: UnsafeMutablePointer<UInt8>, _ maxOutSize: Int, _ seed: UInt32) -> Int {
    var rng = Rng(state: UInt64(seed) | 1 << 41)
    var a = Message.all(Array(UnsafeBufferPointer(start: data1, count: size1)))
    let b = Message.all(Array(UnsafeBufferPointer(start: data2, count: size2)))
    guard !b.isEmpty else { return 0 }
    let donors = b.compactMap(expressionList).flatMap { $0.children ?? [] }
    let targets = a.indices.filter { expressionList(a[$0]) != nil }
    if rng.below(2) == 0, !donors.isEmpty, !targets.isEmpty {
        let t = targets[rng.below(targets.count)]
        let list = expressionList(a[t])!
        var c = list.children!
        let e = donors[rng.below(donors.count)]
        guard let copy = Attr.list(ArraySlice(e.bytes))?.first else { return 0 }
        if c.isEmpty || rng.below(2) == 0 { c.insert(copy, at: rng.below(c.count + 1)) } else { c[rng.below(c.count)] = copy }
        list.children = c
    } else {
        a.insert(b[rng.below(b.count)], at: rng.below(a.count + 1))
    }
    return write(a, to: out, maxSize: maxOutSize) ?? 0
}
#endif

#if !FUZZING
import FuzzReplay
import Foundation

/// The replies a read of `table` gets, in Dump.table's order (the input format above).
func capture(_ name: String) throws -> [[UInt8]] {
    let socket = try NetlinkSocket()
    var out: [[UInt8]] = []
    let t = nftnl_table_alloc()!
    defer { nftnl_table_free(t) }
    nftnl_table_set_str(t, attr(NFTNL_TABLE_NAME), name)
    var seq = socket.allocateSeq()
    let get = Kernel.request(Int32(NFT_MSG_GETTABLE.rawValue), family: Dump.family, flags: NLM_F_ACK, seq: seq) {
        nftnl_table_nlmsg_build_payload($0, t)
    }
    out += try socket.dump(get, seq: seq, untilFirstReply: true).map(\.bytes)
    func list(_ type: nf_tables_msg_types, _ payload: (UnsafeMutablePointer<nlmsghdr>) -> Void) throws -> [NetlinkMessage] {
        seq = socket.allocateSeq()
        return try socket.dump(Kernel.request(Int32(type.rawValue), family: Dump.family, flags: NLM_F_DUMP, seq: seq,
                                              payload: payload), seq: seq)
    }
    let c = nftnl_chain_alloc()!
    defer { nftnl_chain_free(c) }
    nftnl_chain_set_str(c, attr(NFTNL_CHAIN_TABLE), name)
    out += try list(NFT_MSG_GETCHAIN) { nftnl_chain_nlmsg_build_payload($0, c) }.map(\.bytes)
    let s = nftnl_set_alloc()!
    defer { nftnl_set_free(s) }
    nftnl_set_set_str(s, attr(NFTNL_SET_TABLE), name)
    for set in try list(NFT_MSG_GETSET, { nftnl_set_nlmsg_build_payload($0, s) }) {
        out.append(set.bytes)
        guard let decoded = try Dump.decodeSet(set, table: name) else { continue }
        let f = nftnl_set_alloc()!
        defer { nftnl_set_free(f) }
        nftnl_set_set_str(f, attr(NFTNL_SET_TABLE), name)
        nftnl_set_set_str(f, attr(NFTNL_SET_NAME), decoded.name)
        out += try list(NFT_MSG_GETSETELEM) { nftnl_set_elems_nlmsg_build_payload($0, f) }.map(\.bytes)
    }
    let r = nftnl_rule_alloc()!
    defer { nftnl_rule_free(r) }
    nftnl_rule_set_str(r, attr(NFTNL_RULE_TABLE), name)
    out += try list(NFT_MSG_GETRULE) { nftnl_rule_nlmsg_build_payload($0, r) }.map(\.bytes)
    return out
}

func padded(_ m: [UInt8]) -> [UInt8] { m + [UInt8](repeating: 0, count: (4 - m.count % 4) % 4) }

/// Replays inputs without libFuzzer: `FuzzNetlink FILE-OR-DIR...`; `FuzzNetlink --show FILE`
/// prints what an input reads back as (nft text); or, inside a network
/// namespace, `FuzzNetlink --capture TABLE DIR PREFIX [--whole]` writes seeds: the whole
/// dump, and (without --whole) each rule with the table and chains.
@main struct Replay {
    static func main() throws {
        let args = Array(CommandLine.arguments.dropFirst())
        if args.first == "--capture", args.count == 4 || (args.count == 5 && args[4] == "--whole") {
            let replies = try capture(args[1])
            // make-seeds loads every ruleset as table fwctl, the name the fuzzer decodes.
            func kindOf(_ m: [UInt8]) -> Kind { kind(m.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt16.self) }) }
            // Small seeds besides the whole dump: each rule with the table and chains only.
            let context = replies.filter { kindOf($0) == .table || kindOf($0) == .chain }
            var seeds: [[UInt8]] = [replies.flatMap(padded)]
            for rule in replies where kindOf(rule) == .rule && args.count == 4 { seeds.append((context + [rule]).flatMap(padded)) }
            for (i, seed) in seeds.enumerated() {
                let path = "\(args[2])/\(args[3])-\(i == 0 ? "all" : String(format: "rule%03d", i))"
                _ = FileManager.default.createFile(atPath: path, contents: Data(seed))
            }
            print("FuzzNetlink: \(seeds.count) seed(s) of table \(args[1]) (\(replies.count) messages) in \(args[2])")
            return
        }
        if args.first == "--show", args.count == 2 {
            let bytes = [UInt8](FileManager.default.contents(atPath: args[1]) ?? Data())
            let msgs = messages(bytes)
            guard let dump = decode(msgs) else { print("\(msgs.count) message(s); the read fails"); return }
            print("\(msgs.count) message(s):\n" + NftRenderer(options: .init(counters: true, notes: true)).render(KernelReader.ruleset(dump)))
            return
        }
        replayInputs(args, target: "FuzzNetlink", fuzzOne)
    }
}
#endif
