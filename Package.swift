// swift-tools-version:6.0
//
// The pipeline is visible in the target names:
//   FWPolicy -> FWResolve (names -> addresses) -> FWRuleset (the IR and the compiler)
//            -> FWRender (nft, iptables, JSON) / FWNetlink (the kernel) -> fwctl (thin CLI)
// FWRuleset takes the resolution as plain addresses, so it builds without the resolver.
// CNetfilter and CLdns are the system libraries underneath, found with pkg-config.
import PackageDescription

let v5: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "fwctl",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "fwctl", targets: ["fwctl"]),
        .library(name: "FWPolicy", targets: ["FWPolicy"]),
        .library(name: "FWResolve", targets: ["FWResolve"]),
        .library(name: "FWRuleset", targets: ["FWRuleset"]),
        .library(name: "FWRender", targets: ["FWRender"]),
        .library(name: "FWNetlink", targets: ["FWNetlink"]),
        .library(name: "FWProxy", targets: ["FWProxy"]),
        .library(name: "FWWatch", targets: ["FWWatch"]),
        .library(name: "FWIptables", targets: ["FWIptables"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // FUZZ TARGETS (scripts/fuzz) go here.
        .target(name: "FuzzReplay", path: "Fuzz/FuzzReplay"),
        // libFuzzer targets, one folder each under Fuzz/ (see Fuzz/README.md). A normal build
        // links them as replayers (FuzzX FILE...); scripts/fuzz builds them with -DFUZZING.
        .executableTarget(name: "FuzzPolicy", dependencies: ["FuzzReplay", "FWPolicy", "FWRuleset", "FWRender"],
                          path: "Fuzz/FuzzPolicy", exclude: ["corpus", "options"], swiftSettings: v5),
        .executableTarget(name: "FuzzProxyHead", dependencies: ["FuzzReplay",
            "FWProxy", "FWPolicy", "FWResolve",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "Fuzz/FuzzProxyHead", exclude: ["corpus"], swiftSettings: v5),
        .executableTarget(name: "FuzzClientHello", dependencies: ["FuzzReplay", "FWProxy", "FWPolicy"],
                          path: "Fuzz/FuzzClientHello", exclude: ["corpus"], swiftSettings: v5),
        .executableTarget(name: "FuzzDNS", dependencies: ["FuzzReplay", "FWResolve", "FWPolicy"],
                          path: "Fuzz/FuzzDNS", exclude: ["corpus"], swiftSettings: v5),
        .executableTarget(name: "FuzzNetlink", dependencies: ["FuzzReplay", "FWNetlink", "FWRuleset", "FWRender", "CNetfilter"],
                          path: "Fuzz/FuzzNetlink", exclude: ["corpus"], swiftSettings: v5),

        // System libraries.
        .systemLibrary(name: "CNetfilter", pkgConfig: "libnftnl",
                       providers: [.apt(["libnftnl-dev", "libmnl-dev"])]),
        .systemLibrary(name: "CLdns", pkgConfig: "ldns",
                       providers: [.apt(["libldns-dev"])]),

        // One library per stage.
        .target(name: "FWPolicy", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")],
                swiftSettings: v5),
        .target(name: "FWResolve", dependencies: ["FWPolicy", "CLdns"], swiftSettings: v5),
        .target(name: "FWRuleset", dependencies: ["FWPolicy"], swiftSettings: v5),
        .target(name: "FWRender", dependencies: ["FWRuleset"], swiftSettings: v5),
        .target(name: "FWNetlink", dependencies: ["FWRuleset", "CNetfilter"], swiftSettings: v5),
        // The enforcing proxy. Runs unprivileged: it never imports FWNetlink.
        .target(name: "FWProxy", dependencies: [
            "FWPolicy", "FWResolve",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: v5),

        // The iptables backend: the same ruleset through iptables-restore and ipset, for hosts
        // whose firewall is iptables (legacy or nft flavour).
        .target(name: "FWIptables", dependencies: ["FWPolicy", "FWRuleset", "FWRender"], swiftSettings: v5),

        // `fwctl watch`: the names sets kept true to DNS, and the DNS filter. Runs as root
        // (netlink, the socket mark): it never imports FWProxy.
        .target(name: "FWWatch", dependencies: [
            "FWPolicy", "FWResolve", "FWRuleset", "FWNetlink",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ], swiftSettings: v5),

        // The commit a packaged binary was built from (scripts/package sets it).
        .target(name: "FWBuildInfo"),

        // The thin command line.
        .executableTarget(name: "fwctl", dependencies: [
            "FWPolicy", "FWResolve", "FWRuleset", "FWRender", "FWNetlink", "FWIptables", "FWProxy", "FWWatch", "FWBuildInfo",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: v5),

        // Tests mirror the floors.
        .target(name: "FWTestSupport", dependencies: ["FWPolicy", "FWRuleset"], path: "Tests/FWTestSupport",
                swiftSettings: v5),
        .testTarget(name: "FWPolicyTests", dependencies: ["FWPolicy", "FWTestSupport"],
                    swiftSettings: v5),
        .testTarget(name: "FWResolveTests", dependencies: ["FWResolve", "FWTestSupport"],
                    swiftSettings: v5),
        // Golden files live in the source tree (Tests/FWRenderTests/Golden), not in the
        // bundle, so a mismatch can write NAME.actual beside the committed file.
        .testTarget(name: "FWRulesetTests", dependencies: ["FWRuleset", "FWRender", "FWTestSupport"],
                    exclude: ["Golden", "Fixtures"], swiftSettings: v5),
        .testTarget(name: "FWNetlinkTests", dependencies: ["FWNetlink", "FWRender", "FWRuleset", "FWPolicy", "FWTestSupport"],
                    swiftSettings: v5),
        .testTarget(name: "FWWatchTests", dependencies: ["FWWatch", "FWPolicy", "FWResolve", "FWRuleset", "FWTestSupport"],
                    swiftSettings: v5),
        .testTarget(name: "CLITests", dependencies: ["FWTestSupport"], swiftSettings: v5),
        .testTarget(name: "FWProxyTests", dependencies: [
            "FWProxy", "FWPolicy", "FWTestSupport",
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
        ], exclude: ["Fixtures"], swiftSettings: v5),
        // The attack suite: the known ways around egress controls, tried in the lab.
        .testTarget(name: "FWAttackTests", dependencies: ["FWTestSupport"], swiftSettings: v5),
        // End to end: sandbox and outside namespaces, a real DNS server, real listeners.
        .testTarget(name: "FWLabTests", dependencies: ["FWTestSupport"],
                    exclude: ["Fixtures"], swiftSettings: v5),
    ]
)
