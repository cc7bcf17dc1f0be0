import Foundation
import XCTest
@testable import FWNetlink
import FWPolicy
import FWRender
import FWRuleset
import FWTestSupport

/// Read-back: the kernel's table decoded into the IR (KernelReader). The kernel tests each
/// load a table into a namespace they create (with `nft -f` or Kernel.apply), read it on a
/// thread inside that namespace (`inside`), and always delete the namespace.
final class ReadBackTests: XCTestCase {
    var nft: String!
    override func setUpWithError() throws { nft = try tool("nft") }

    static let plain = NftRenderer(options: .init(counters: false, notes: false))
    static let listing = NftRenderer(options: .init(counters: true, notes: false))

    func load(_ ns: FWTestSupport.NetworkNamespace, _ text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try ns.exec(nft, ["-f", "-"], input: text)
        XCTAssertEqual(r.status, 0, "nft -f refused:\n\(r.stderr)", file: file, line: line)
    }

    func read(_ ns: FWTestSupport.NetworkNamespace, _ table: String) throws -> Ruleset? {
        try ns.inside { try KernelReader.read(table: table) }
    }

    func listed(_ ns: FWTestSupport.NetworkNamespace, _ table: String) throws -> String {
        let r = try ns.exec(nft, ["list", "table", "inet", table])
        XCTAssertEqual(r.status, 0, r.stderr)
        return r.stdout
    }

    /// The golden file as the renderer prints it without notes: its comment lines removed.
    static func withoutComments(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.drop(while: { $0 == "\t" }).hasPrefix("#") }
            .joined(separator: "\n")
    }

    /// What the kernel cannot hold (host lists, notes) and what it adds (counter values) set
    /// aside, so a read-back compares with a compiled ruleset as values.
    static func comparable(_ r: Ruleset) -> Ruleset {
        var r = r
        r.notes = []
        for i in r.table.sets.indices { r.table.sets[i].hosts = [] }
        for c in r.table.chains.indices {
            for k in r.table.chains[c].rules.indices {
                r.table.chains[c].rules[k].statements = r.table.chains[c].rules[k].statements.map {
                    if case .counter = $0 { return .counter } else { return $0 }
                }
            }
        }
        return r
    }

    // MARK: golden renderings through the kernel

    /// Each golden rendering, loaded with `nft -f`, reads back to the compiled ruleset: the
    /// same rendering, and the same values.
    func testGoldenRenderingsReadBackAsCompiled() throws {
        for c in GoldenCases.all {
            let golden = try String(contentsOf: GoldenCases.golden.appendingPathComponent("\(c.name).nft.ref"), encoding: .utf8)
            let compiled = try GoldenCases.compile(c)
            let ns = try FWTestSupport.NetworkNamespace()
            defer { ns.delete() }
            try load(ns, golden)
            let back = try XCTUnwrap(try read(ns, compiled.table.name), "\(c.name): table not found")
            XCTAssertEqual(Self.plain.render(back), Self.withoutComments(golden), "\(c.name): read-back renders differently")
            XCTAssertEqual(Self.plain.render(back), Self.plain.render(compiled), c.name)
            XCTAssertEqual(Self.comparable(back), Self.comparable(compiled), c.name)
            XCTAssertEqual(back.notes, [], c.name)
        }
    }

    /// Counters come back as the kernel's numbers; with them, the rendering is exactly what
    /// `nft list table` prints (what `status` shows).
    func testCountersDecodeAndRenderLikeNftList() throws {
        let c = GoldenCases.all.first { $0.name == "lab" }!
        let golden = try String(contentsOf: GoldenCases.golden.appendingPathComponent("lab.nft.ref"), encoding: .utf8)
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        try load(ns, golden)
        // Two datagrams on the namespace's own loopback (bash's /dev/udp), so the counter
        // of `oifname "lo"` is not zero.
        let bash = try tool("bash")
        XCTAssertEqual(try ns.exec(bash, ["-c", "echo a > /dev/udp/127.0.0.1/9; echo b > /dev/udp/127.0.0.1/9"]).status, 0)
        let name = try GoldenCases.compile(c).table.name
        let back = try XCTUnwrap(try read(ns, name))
        let counters = back.table.chains.flatMap(\.rules).flatMap(\.statements).compactMap { s -> (UInt64?, UInt64?)? in
            if case .counter(let p, let b) = s { return (p, b) } else { return nil }
        }
        XCTAssertFalse(counters.isEmpty)
        XCTAssertTrue(counters.allSatisfy { $0.0 != nil && $0.1 != nil }, "every counter has numbers")
        XCTAssertEqual(Self.listing.render(back), try listed(ns, name))
        let lo = back.table.chains.first { $0.name == "output" }?.rules.first
        guard case .counter(let packets?, let bytes?)? = lo?.statements.first else { return XCTFail("no counter on oifname lo") }
        // Each datagram and the port-unreachable it draws leave through lo.
        XCTAssertGreaterThanOrEqual(packets, 2)
        XCTAssertGreaterThan(bytes, 2 * 28)
    }

    // MARK: what fwctl never emits

    /// A rule someone added by hand is read back with its unknown part opaque, not dropped.
    func testHandAddedRuleReadsBackOpaque() throws {
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        try load(ns, try String(contentsOf: GoldenCases.golden.appendingPathComponent("drop-open.nft.ref"), encoding: .utf8))
        let before = try XCTUnwrap(try read(ns, "fwctl"))
        XCTAssertEqual(try ns.exec(nft, ["add", "rule", "inet", "fwctl", "output", "meta", "cpu", "0", "accept"]).status, 0)
        let after = try XCTUnwrap(try read(ns, "fwctl"))
        let output = try XCTUnwrap(after.table.chains.first { $0.name == "output" })
        XCTAssertEqual(output.rules.count, before.table.chains.first { $0.name == "output" }!.rules.count + 1)
        XCTAssertEqual(output.rules.last, Rule([.opaque("[ meta load cpu => reg 1 ] [ cmp eq reg 1 0x00000000 ]")], [], .accept))
        XCTAssertNotEqual(Self.plain.render(after), Self.plain.render(before), "a diff must show the added rule")
    }

    /// Every construct below is something fwctl never writes; each must read back as a rule
    /// with an opaque part, never as an fwctl match it merely resembles, and never vanish.
    func testForeignExpressionsAreOpaque() throws {
        let foreign = [
            "ip daddr != @allow4 accept",                      // inverted lookup
            "ip daddr { 192.0.2.1, 192.0.2.2 } accept",       // anonymous address set
            "tcp dport > 1024 accept",                         // another comparison
            "tcp dport != 22 accept",
            "oifname \"eth*\" accept",                         // interface wildcard
            "ct state { established, related } accept",        // ct state as a set
            "log level debug prefix \"x: \" accept",           // log options
            "log accept",                                      // log without a prefix
            "limit rate over 10/minute drop",                  // inverted limit
            "limit rate 10/day accept",                        // another unit
            "meta l4proto icmp accept",                        // another protocol
            "reject with icmp type host-unreachable",          // another reject
            "counter meta mark 42 accept",                     // statement before a match
            "meta mark set 42",                                // immediate into a data register
            "ip daddr 192.0.2.1 return",                       // another verdict
            "ip dscp 8 accept",                                // another payload field
        ]
        let table = "table inet fwforeign {\n\tset allow4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t}\n\n"
            + "\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n"
            + foreign.map { "\t\t\($0)\n" }.joined() + "\t}\n}\n"
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        try load(ns, table)
        let back = try XCTUnwrap(try read(ns, "fwforeign"))
        let rules = try XCTUnwrap(back.table.chains.first).rules
        XCTAssertEqual(rules.count, foreign.count, "no rule may be dropped")
        for (text, rule) in zip(foreign, rules) {
            XCTAssertTrue(rule.matches.contains { if case .opaque = $0 { return true } else { return false } },
                          "\(text) read back as \(rule)")
        }
        // Known parts around an unknown one keep their place.
        XCTAssertEqual(rules[14], Rule([.address(.destination, .ipv4, .prefix(CIDR(host: IPAddress("192.0.2.1")!))),
                                        .opaque("[ immediate reg 0 return ]")], [], nil))
        XCTAssertEqual(rules[12], Rule([.opaque("[ counter ] [ meta load mark => reg 1 ] [ cmp eq reg 1 0x0000002a ] [ immediate reg 0 accept ]")], [], nil))
    }

    /// A base chain fwctl cannot express and a set of another type are not guessed.
    func testForeignChainAndSet() throws {
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        try load(ns, """
            table inet fwodd {
            \tset ports {
            \t\ttype inet_service
            \t\telements = { 22, 443 }
            \t}

            \tchain output {
            \t\ttype route hook output priority mangle; policy accept;
            \t\ttcp dport @ports accept
            \t}
            }

            """)
        let back = try XCTUnwrap(try read(ns, "fwodd"))
        XCTAssertEqual(back.table.sets, [])
        XCTAssertEqual(back.notes.count, 1)
        XCTAssertTrue(back.notes[0].contains("set ports"), back.notes[0])
        let chain = try XCTUnwrap(back.table.chains.first)
        XCTAssertEqual(chain.base, Chain.Base(type: .route, hook: .output, priority: -150, policy: .accept))
        XCTAssertEqual(chain.rules.count, 1)
        XCTAssertTrue(chain.rules[0].matches.contains { if case .opaque = $0 { return true } else { return false } })
    }

    // MARK: absence

    func testNoTableReadsNil() throws {
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        XCTAssertNil(try read(ns, "fwctl"))
        // Another table, or the same name in another family, is not fwctl's.
        try load(ns, "table ip fwctl {\n}\ntable inet other {\n}\n")
        XCTAssertNil(try read(ns, "fwctl"))
    }

    /// A dormant table filters nothing; the IR has no place for that, so a note says it.
    func testDormantTableIsNoted() throws {
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        try load(ns, "table inet fwctl {\n\tflags dormant\n}\n")
        XCTAssertEqual(try read(ns, "fwctl")?.notes.first?.contains("dormant"), true)
    }

    // MARK: set elements

    /// 100,000 elements span many netlink messages and receive calls; all come back.
    func testLargeSetReadsBack() throws {
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        // IPv6, so 100,000 separate hosts fit in the documentation prefix 2001:db8::/32.
        let base = IPAddress("2001:db8::")!.value
        let elements = (0..<100_000).map { CIDR(host: IPAddress(family: .ipv6, value: base + UInt128($0) * 2)) }
        let ruleset = Ruleset(table: Table(name: "fwbig", sets: [NamedSet(name: "big6", keyType: .ipv6Addr, elements: elements)]))
        try ns.inside { try Kernel.apply(ruleset) }
        let back = try XCTUnwrap(try read(ns, "fwbig"))
        XCTAssertEqual(back.table.sets.first?.elements.count, 100_000)
        XCTAssertEqual(back, ruleset)
    }

    /// Adjacent prefixes and intervals reaching the top of the address space come back as
    /// the compiler's canonical (merged) element list; a set without the interval flag
    /// comes back as its single addresses, adjacent ones too, timed out or not.
    func testSetElementsReadBackMerged() throws {
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        try load(ns, """
            table inet fwsets {
            \tset a4 {
            \t\ttype ipv4_addr
            \t\tflags interval
            \t\telements = { 192.0.2.0/25, 192.0.2.128/25, 198.51.100.0/24, 198.51.101.0/24, 203.0.113.7, 255.255.255.255 }
            \t}
            \tset b4 {
            \t\ttype ipv4_addr
            \t\tflags interval
            \t\telements = { 0.0.0.0/1, 128.0.0.0/1 }
            \t}
            \tset a6 {
            \t\ttype ipv6_addr
            \t\tflags interval,timeout
            \t\telements = { 2001:db8::/33, 2001:db8:8000::/33, 2001:db9::, ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120 }
            \t}
            \tset h6 {
            \t\ttype ipv6_addr
            \t\telements = { 2001:db8::2, 2001:db8::1, ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff }
            \t}
            \tset n4 {
            \t\ttype ipv4_addr
            \t\tflags timeout
            \t\telements = { 192.0.2.1, 192.0.2.0 }
            \t}
            }

            """)
        // A later element next to an existing one (the kernel keeps both).
        XCTAssertEqual(try ns.exec(nft, ["add", "element", "inet", "fwsets", "a4", "{ 203.0.113.6 }"]).status, 0)
        // An element with its own timeout, as `fwctl watch` adds them.
        XCTAssertEqual(try ns.exec(nft, ["add", "element", "inet", "fwsets", "n4", "{ 192.0.2.3 timeout 1h }"]).status, 0)
        let back = try XCTUnwrap(try read(ns, "fwsets"))
        func cidrs(_ s: [String]) -> [CIDR] { s.map { try! CIDR.parse($0).get() } }
        XCTAssertEqual(back.table.sets, [
            NamedSet(name: "a4", keyType: .ipv4Addr, flags: [.interval],
                     elements: cidrs(["192.0.2.0/24", "198.51.100.0/23", "203.0.113.6/31", "255.255.255.255/32"])),
            NamedSet(name: "b4", keyType: .ipv4Addr, flags: [.interval], elements: cidrs(["0.0.0.0/0"])),
            NamedSet(name: "a6", keyType: .ipv6Addr, flags: [.interval, .timeout],
                     elements: cidrs(["2001:db8::/32", "2001:db9::/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"])),
            NamedSet(name: "h6", keyType: .ipv6Addr, flags: [],
                     elements: cidrs(["2001:db8::1/128", "2001:db8::2/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"])),
            NamedSet(name: "n4", keyType: .ipv4Addr, flags: [.timeout],
                     elements: cidrs(["192.0.2.0/32", "192.0.2.1/32", "192.0.2.3/32"])),
        ])
    }

    /// Starts and ends into ranges, whatever the order and with overlaps, which `nft` would
    /// refuse to load but the decoding must still get right.
    func testIntervalElementsToRanges() {
        func e(_ v: UInt8, end: Bool = false) -> TableDump.Element {
            TableDump.Element(key: [v], flags: end ? 1 : 0, keyEnd: nil)
        }
        // Descending, with nft's leading end marker at zero, two adjacent intervals and an
        // open one at the top.
        let elements = [e(250), e(21, end: true), e(20), e(20, end: true), e(10), e(0, end: true)]
        XCTAssertEqual(SetReading.ranges(elements, keyLen: 1, interval: true)?.map { [$0.lo, $0.hi] },
                       [[10, 19], [20, 20], [250, 255]])
        // Overlapping intervals and a stray end marker.
        let overlapping = [e(5, end: true), e(10), e(30, end: true), e(20), e(40, end: true), e(35), e(36, end: true)]
        XCTAssertEqual(SetReading.ranges(overlapping, keyLen: 1, interval: true)?.map { [$0.lo, $0.hi] },
                       [[10, 29], [35, 35]])
        // Wrong key lengths are refused, not misread.
        XCTAssertNil(SetReading.ranges([TableDump.Element(key: [1, 2], flags: 0, keyEnd: nil)], keyLen: 4, interval: true))
        // Overlapping prefixes merge to the compiler's canonical list.
        let v4 = [(UInt128(0xC000_0200), UInt128(0xC000_02FF)), (0xC000_0280, 0xC000_0300), (0xFFFF_FF00, 0xFFFF_FFFF)]
        XCTAssertEqual(SetReading.cidrs(.ipv4, v4.map { (lo: $0.0, hi: $0.1) }).map(\.description),
                       ["192.0.2.0/24", "192.0.3.0", "255.255.255.0/24"])
    }

    // MARK: every IR form, both encodings

    /// A ruleset with every match, statement and verdict the IR has, applied with fwctl's
    /// own netlink encoding, reads back as the same values.
    func testEveryIRFormRoundTripsThroughKernelApply() throws {
        let ruleset = Self.everyForm
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        try ns.inside { try Kernel.apply(ruleset) }
        let back = try XCTUnwrap(try read(ns, ruleset.table.name))
        XCTAssertEqual(Self.comparable(back), Self.comparable(ruleset))
        XCTAssertEqual(Self.listing.render(back), try listed(ns, ruleset.table.name), "status rendering vs nft list")
    }

    /// The same ruleset loaded by `nft -f` from its rendering (nft's encodings: shorter
    /// loads for byte-aligned prefixes, cmp gte/lte for a port range) reads back the same.
    func testEveryIRFormRoundTripsThroughNft() throws {
        let ruleset = Self.everyForm
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        try load(ns, NftRenderer().render(ruleset))
        let back = try XCTUnwrap(try read(ns, ruleset.table.name))
        XCTAssertEqual(Self.comparable(back), Self.comparable(ruleset))
        XCTAssertEqual(Self.listing.render(back), try listed(ns, ruleset.table.name))
    }

    /// Every lowered rule of the golden rulesets and of `everyForm` lifts back to itself,
    /// without the kernel (the decoder is the lowering's inverse).
    func testLoweringLiftsBack() throws {
        var rulesets = [Self.everyForm]
        for c in GoldenCases.all { rulesets.append(try GoldenCases.compile(c)) }
        for r in rulesets {
            for chain in r.table.chains {
                for rule in chain.rules {
                    var lowering = RuleLowering(namedSetIDs: [:], nextSetID: 0)
                    let (exprs, sets) = lowering.lower(rule)
                    var anonymous: [String: AnonymousSet] = [:]
                    var names: [UInt32: String] = [:]
                    for s in sets {
                        let name = "__set\(s.id)"
                        names[s.id] = name
                        anonymous[name] = SetReading.anonymous(TableDump.Set(
                            name: name, flags: s.flags, keyType: s.keyType.rawValue, keyLen: s.keyLen,
                            elements: s.elements.map { TableDump.Element(key: $0.key, flags: $0.intervalEnd ? 1 : 0, keyEnd: nil) }))
                    }
                    let items = exprs.map { x -> ReadExpr in
                        if case .lookup(let l) = x, let id = l.setID, let name = names[id] {
                            return ReadExpr(.lookup(Lookup(set: name, setID: nil)), text: "lookup")
                        }
                        return ReadExpr(x, text: "\(x)")
                    }
                    let lifted = RuleLifting(anonymous: anonymous).lift(items, comment: rule.comment)
                    var expected = rule
                    expected.statements = rule.statements.map { if case .counter = $0 { return .counter(packets: 0, bytes: 0) } else { return $0 } }
                    XCTAssertEqual(lifted, expected)
                }
            }
        }
    }

    /// Expression-level parity: what RuleLowering emits for each rule against what the
    /// kernel holds after `nft -f` of the rendering (the list parity test cannot see a
    /// different encoding that nft prints the same way).
    func testLoweringEncodesLikeNft() throws {
        var rulesets = [Self.everyForm]
        for c in GoldenCases.all { rulesets.append(try GoldenCases.compile(c)) }
        var differences: [String] = []
        for r in rulesets {
            let ns = try FWTestSupport.NetworkNamespace()
            defer { ns.delete() }
            try load(ns, NftRenderer().render(r))
            let name = r.table.name
            let dump = try XCTUnwrap(try ns.inside { () throws -> TableDump? in try Dump.table(name, socket: try NetlinkSocket()) })
            let anonymous = Dictionary(uniqueKeysWithValues: dump.sets.filter(\.isAnonymous).map { ($0.name, $0) })
            for chain in r.table.chains {
                let kernelRules = dump.rules.filter { $0.chain == chain.name }
                XCTAssertEqual(kernelRules.count, chain.rules.count)
                for (rule, kernel) in zip(chain.rules, kernelRules) {
                    var lowering = RuleLowering(namedSetIDs: [:], nextSetID: 0)
                    let (exprs, sets) = lowering.lower(rule)
                    let ours = exprs.map(Self.anonymousNamesHidden)
                    let theirs = kernel.exprs.map { Self.anonymousNamesHidden($0.expr) }
                    let text = Self.plain.rule(rule)
                    if ours != theirs {
                        differences.append("\(name) \(chain.name): \(text)\n  fwctl: \(ours.map { "\($0)" }.joined(separator: " "))\n  nft:   \(theirs.map { "\($0)" }.joined(separator: " "))")
                    }
                    let kernelSets = kernel.exprs.compactMap { x -> TableDump.Set? in
                        if case .lookup(let l) = x.expr { return anonymous[l.set] } else { return nil }
                    }
                    for (s, k) in zip(sets, kernelSets) {
                        let a = (s.flags, s.keyType.rawValue, s.keyLen, s.elements.map { "\($0.key)\($0.intervalEnd)" }.sorted())
                        let b = (k.flags, k.keyType, k.keyLen, k.elements.map { "\($0.key)\($0.isIntervalEnd)" }.sorted())
                        if a != b { differences.append("\(name) \(chain.name): \(text)\n  fwctl set: \(a)\n  nft set:   \(b)") }
                    }
                }
            }
        }
        XCTAssertEqual(differences, [], differences.joined(separator: "\n"))
    }

    static func anonymousNamesHidden(_ x: Expr) -> Expr {
        if case .lookup(let l) = x, l.set.hasPrefix("__set") { return .lookup(Lookup(set: "__set", setID: nil)) }
        return x
    }

    /// One of everything the IR can say, with documentation addresses only.
    static let everyForm: Ruleset = {
        func cidr(_ s: String) -> CIDR { try! CIDR.parse(s).get() }
        let base = Chain.Base(type: .filter, hook: .output, priority: 0, policy: .drop)
        let output = Chain(name: "output", base: base, rules: [
            Rule([.interfaceName(.destination, "lo")], [.counter], .accept),
            Rule([.ctState([.established, .related])], [.counter], .accept),
            Rule([.ctState([.invalid])], [], .drop),
            Rule([.icmpType([.destinationUnreachable, .timeExceeded])], [.counter], .accept),
            Rule([.icmpType([.echoRequest])], [], .accept),
            Rule([.icmpv6Type([.packetTooBig, .neighborSolicit, .neighborAdvert])], [.counter], .accept),
            Rule([.icmpv6Type([.echoRequest])], [], .accept),
            Rule([.address(.destination, .ipv4, .prefix(cidr("192.0.2.53"))), .port(.udp, .destination, .ranges([PortRange(port: 53)]))], [.counter], .accept),
            Rule([.address(.destination, .ipv4, .prefix(cidr("198.51.100.0/24"))), .port(.tcp, .destination, .ranges([PortRange(8000, 8100)!]))], [], .accept),
            Rule([.address(.source, .ipv4, .prefix(cidr("203.0.113.128/25")))], [], .accept),
            Rule([.address(.destination, .ipv6, .prefix(cidr("2001:db8::/32")))], [], .accept, comment: "v6 docs"),
            Rule([.address(.destination, .ipv6, .prefix(cidr("2001:db8:1::/49")))], [], .accept),
            Rule([.address(.destination, .ipv6, .prefix(cidr("2001:db8::53"))), .port(.tcp, .destination, .ranges([PortRange(port: 80), PortRange(port: 443)]))], [], .accept),
            Rule([.address(.destination, .ipv4, .set("allow4")), .port(.tcp, .destination, .ranges([PortRange(8000, 8100)!, PortRange(port: 9000)]))], [.counter], .accept),
            Rule([.address(.destination, .ipv6, .set("allow6")), .port(.udp, .source, .ranges([PortRange(port: 123)]))], [], .accept),
            Rule([.mark(0x4657_4453), .address(.destination, .ipv4, .set("names4")), .port(.udp, .destination, .ranges([PortRange(port: 53)]))], [.counter], .accept),
            Rule([.mark(1)], [], .drop),
            Rule([], [], .jump("audit")),
            Rule([], [.limit(rate: 10, per: .minute, burst: 5), .log(prefix: "fwctl-deny: ")], nil),
            Rule([], [.limit(rate: 3, per: .second, burst: 9)], .accept),
            Rule([], [.limit(rate: 100, per: .hour, burst: 5)], .accept),
            Rule([.l4proto(.tcp)], [.counter], .reject(.tcpReset)),
            Rule([.l4proto(.udp)], [], .reject(.adminProhibited)),
            Rule([], [.counter], .reject(.adminProhibited)),
        ])
        let input = Chain(name: "input", base: .init(type: .filter, hook: .input, priority: 0, policy: .accept), rules: [
            Rule([.interfaceName(.source, "veth-fw0")], [], .accept),
            Rule([.address(.source, .ipv4, .set("allow4"))], [.counter], .drop),
        ])
        let nat = Chain(name: "pre", base: .init(type: .nat, hook: .prerouting, priority: -100, policy: .accept), rules: [
            Rule([.mark(0x4657_4453)], [], .accept),
            Rule([.port(.udp, .destination, .ranges([PortRange(port: 53)]))], [.counter, .redirect(port: 5353)], nil),
        ])
        let audit = Chain(name: "audit", base: nil, rules: [Rule([], [.counter], nil)])
        return Ruleset(table: Table(
            name: "fwevery", comment: "fwctl 0.1.0 applied 2026-01-01T00:00:00Z sha256 00 /tmp/policy.test.toml",
            sets: [
                // Both reach the top of the address space: a start with no end.
                NamedSet(name: "allow4", keyType: .ipv4Addr, elements: [cidr("192.0.2.10"), cidr("198.51.100.0/24"), cidr("255.255.255.254/31")]),
                NamedSet(name: "allow6", keyType: .ipv6Addr, flags: [.interval, .timeout],
                         elements: [cidr("2001:db8::10"), cidr("2001:db8:100::/48"), cidr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:0/112")]),
                NamedSet(name: "empty4", keyType: .ipv4Addr),
                // Single addresses, one element each (adjacent ones too), as names sets hold them.
                NamedSet(name: "names4", keyType: .ipv4Addr, flags: [.timeout],
                         elements: [cidr("192.0.2.1"), cidr("192.0.2.2"), cidr("255.255.255.255")]),
                NamedSet(name: "names6", keyType: .ipv6Addr, flags: [.timeout], elements: [cidr("2001:db8::1"), cidr("2001:db8::2")]),
            ],
            chains: [output, input, nat, audit]))
    }()
}
