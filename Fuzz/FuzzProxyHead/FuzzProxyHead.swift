// libFuzzer target: what the proxy makes of a client's bytes, through the real handlers in
// an EmbeddedChannel (NIO's HTTP/1 decoder included), against a fixed policy.
//
// Input: byte 0 picks the pipeline, byte 1 how the rest arrives (chunks of byte1+1 bytes;
// 255: all at once), the rest is what the client sends.
//   mode 0, proxy.listen: decoder, encoder, ConnectHandler (CONNECT host:port, or
//           absolute-form plain HTTP through PlainHTTPFront);
//   mode 1, a terminated tunnel to api.example.com:443 (paths, methods, inject): encoder,
//           decoder, pipelining, ResponseScrubber, RequestGate, and a stand-in upstream that
//           answers each request and echoes the injected key in its body;
//   mode 2, the same for registry.example.net:443 (methods only, no inject);
//   mode 3, the transparent port: TransparentHandler (a ClientHello's SNI, or plain HTTP
//           held to the first Host header), original destination port 80 or 443.
// Nothing is dialed: the dialer's thread pool is never started, so every dial fails at
// once and takes the refusal path, with no socket and no DNS.
//
// Checks, beyond "no trap, no memory error":
//   - a request the gate lets through names the identity in its one Host header, has an
//     origin-form path that passes the entry's rules, no hop-by-hop header, the real key
//     in place of the placeholder, and a body within max_body_bytes;
//   - every response header value is one line of printable ASCII (no header injection);
//   - the real key never reaches the client through a terminated tunnel (the scrubber),
//     and otherwise only when the client sent it itself;
//   - an access-log line for the request is one valid JSON object.
import Foundation
import FWPolicy
@testable import FWProxy
import FWResolve
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix

let secret = "sk-real-0123456789abcdefREAL"
let placeholder = "sk-fwctl-placeholder-0001"
let maxBodyBytes = 1000

let policyText = """
    version = 1
    [dns]
    servers = ["192.0.2.53"]
    [proxy]
    max_body_bytes = \(maxBodyBytes)
    [[allow]]
    host = "api.example.com"
    via = "proxy"
    ports = [443, 8080]
    methods = ["GET", "POST", "HEAD", "OPTIONS"]
    paths = ["/v1/*", "/health", "/files/*/raw"]
    [[allow.inject]]
    header = "x-api-key"
    placeholder = "\(placeholder)"
    secret = "env:FUZZ_KEY"
    [[allow]]
    host = "registry.example.net"
    via = "proxy"
    ports = [443, 80]
    methods = ["GET", "HEAD"]
    [[allow]]
    host = "*.example.org"
    via = "proxy"
    ports = [443, 80, "8000-8100"]
    [[allow]]
    host = "bearer.example.org"
    via = "proxy"
    ports = [443]
    [[allow.inject]]
    header = "Authorization"
    placeholder = "\(placeholder)"
    secret = "env:FUZZ_KEY"
    format = "Bearer {}"
    [[allow]]
    host = "direct.example.com"
    ports = [443]
    """

/// The services a ProxyServer would make, minus anything that touches the network.
struct Fixture {
    let policy: Policy
    let services: ProxyServices
    let api: ProxyEntry
    let registry: ProxyEntry

    init() {
        do {
            policy = try PolicyReader.parse(text: policyText, file: "fuzz.toml", baseDirectory: "/nonexistent").policy
            let secrets = try SecretStore(policy: policy, environment: ["FUZZ_KEY": secret])
            let rules = ProxyRules(policy: policy)
            api = rules.entries[0]
            registry = rules.entries[1]
            // Never started: runIfActive fails at once, so no dial ever resolves or connects.
            let pool = NIOThreadPool(numberOfThreads: 1)
            let resolver = FWResolve.Resolver(options: ResolverOptions(
                servers: [SocketEndpoint(address: IPAddress("192.0.2.53")!, port: 53)], timeoutMs: 1, attempts: 1, parallelism: 1))
            let dialer = UpstreamDialer(resolver: resolver, guardrail: DialGuard(policy: policy), threadPool: pool)
            let log = try AccessLog(path: nil, logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
            services = ProxyServices(rules: rules, dialer: dialer, log: log, secrets: secrets, maxBodyBytes: maxBodyBytes)
        } catch {
            fatalError("fixture: \(error)")
        }
    }
}

let fixture = Fixture()

/// Passes everything on; keeps the request heads the decoder produced.
final class HeadTap: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    var heads: [HTTPRequestHead] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let h) = unwrapInboundIn(data) { heads.append(h) }
        context.fireChannelRead(data)
    }
}

/// Next to the encoder: every response head on its way out.
final class ResponseTap: ChannelOutboundHandler {
    typealias OutboundIn = HTTPServerResponsePart
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head(let h) = unwrapOutboundIn(data) {
            for (name, value) in h.headers {
                precondition(value.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f },
                             "response header \(name) is not one line of printable ASCII: \(value.debugDescription)")
            }
        }
        context.write(data, promise: promise)
    }
}

/// Stands in for UpstreamForwarder: checks what the gate lets through, answers each
/// request (echoing the injected header, so the scrubber has a key to catch).
final class FakeUpstream: ChannelInboundHandler {
    typealias InboundIn = GatedRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let identity: String
    let entry: ProxyEntry
    private var current: HTTPRequestHead?
    private var bodyBytes = 0
    private var aborted = false

    init(identity: String, entry: ProxyEntry) {
        self.identity = identity
        self.entry = entry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head, _):
            check(head)
            current = head
            bodyBytes = 0
        case .body(let b):
            precondition(current != nil && !aborted, "a body part without a head")
            bodyBytes += b.readableBytes
            precondition(bodyBytes <= maxBodyBytes, "\(bodyBytes) body bytes passed the gate")
        case .end:
            guard let head = current else { preconditionFailure("an end without a head") }
            current = nil
            respond(to: head, context: context)
        case .abort:
            aborted = true
        }
    }

    func check(_ head: HTTPRequestHead) {
        let hosts = head.headers["host"]
        precondition(hosts.count == 1, "forwarded with Host headers \(hosts)")
        precondition(HostPattern.normalize(HostName.splitPort(hosts[0]).host) == identity,
                     "forwarded with Host \(hosts[0]) to \(identity)")
        precondition(head.uri.hasPrefix("/") || (head.uri == "*" && head.method == .OPTIONS),
                     "forwarded a request target that is not a path: \(head.uri.debugDescription)")
        precondition(head.method != .CONNECT)
        precondition(fixture.services.rules.checkRequest(method: head.method.rawValue, path: head.uri, entry: entry) == nil,
                     "forwarded \(head.method) \(head.uri.debugDescription), which the rules refuse")
        for name in RequestGate.hopByHop { precondition(head.headers[name].isEmpty, "forwarded hop-by-hop header \(name)") }
        for inj in entry.inject {
            let values = head.headers[inj.header]
            precondition(values == [Injector.apply(format: inj.format, secret: Array(secret.utf8))],
                         "header \(inj.header) forwarded as \(values)")
        }
    }

    func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let echo = entry.inject.map { request.headers[$0.header].joined() }.joined(separator: ",")
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        head.headers.add(name: "X-Echo", value: echo)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "you sent \(echo); ")))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: String(echo.reversed()))))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count else { return false }
    return (0...(haystack.count - needle.count)).contains { i in haystack[i..<(i + needle.count)].elementsEqual(needle) }
}

/// The access-log line for a decoded head must be one JSON object that keeps the method
/// and path as sent (the values come from the wire; the log is read by tools).
func checkLogLine(_ head: HTTPRequestHead, host: String) {
    let path = PathGlob.pathPart(of: head.uri)
    let entry = AccessLog.Entry(client: "192.0.2.9:5000", mode: "http", host: host, port: 443, method: head.method.rawValue,
                                path: path, status: 403, bytesUp: 0, bytesDown: 0, durationMs: 0, reason: "r \(path)")
    let line = AccessLog.line(entry, time: "2026-01-01T00:00:00Z")
    precondition(line.hasSuffix("}\n") && !line.dropLast().contains("\n"), "log line is not one line: \(line.debugDescription)")
    guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        preconditionFailure("log line is not JSON: \(line.debugDescription)")
    }
    precondition(obj["method"] as? String == head.method.rawValue && obj["path"] as? String == path,
                 "log line changed method or path: \(line.debugDescription)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard input.count >= 2 else { return 0 }
    let mode = input[0] % 4
    let chunk = input[1] == 255 ? Int.max : Int(input[1]) + 1
    let bytes = Array(input.dropFirst(2))
    let services = fixture.services

    let channel = EmbeddedChannel()
    channel.remoteAddress = try? SocketAddress(ipAddress: "192.0.2.9", port: 50_000)
    let tap = HeadTap()
    let sync = channel.pipeline.syncOperations
    var identity = "api.example.com"
    do {
        switch mode {
        case 0:
            try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                                name: ProxyServer.decoderName)
            try sync.addHandler(tap)
            try sync.addHandler(HTTPResponseEncoder(), name: ProxyServer.encoderName)
            try sync.addHandler(ResponseTap())
            try sync.addHandler(ConnectHandler(services: services))
        case 1, 2:
            let entry = mode == 1 ? fixture.api : fixture.registry
            identity = entry.host.name
            try sync.addHandlers([
                HTTPResponseEncoder(),
                ResponseTap(),
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                tap,
                HTTPServerPipelineHandler(),
                ResponseScrubber(secrets: services.secrets),
                RequestGate(identity: identity, port: 443, entry: entry, rules: services.rules,
                            injector: Injector(entry: entry, secrets: services.secrets),
                            maxBodyBytes: maxBodyBytes, log: services.log, arrival: .mitm),
                FakeUpstream(identity: identity, entry: entry),
            ])
        default:
            let original = OriginalDestination(address: IPAddress("203.0.113.5")!, port: input[1] & 1 == 0 ? 443 : 80)
            try sync.addHandler(TransparentHandler(services: services, original: original))
        }
    } catch {
        fatalError("pipeline: \(error)")
    }
    channel.connect(to: try! SocketAddress(ipAddress: "192.0.2.1", port: 3128), promise: nil)

    var offset = 0
    while offset < bytes.count, channel.isActive {
        let end = bytes.count - offset > chunk ? offset + chunk : bytes.count
        // A decoder error (not HTTP) ends the connection; it is not a finding.
        do { try channel.writeInbound(ByteBuffer(bytes: bytes[offset..<end])) } catch { break }
        channel.embeddedEventLoop.run()
        offset = end
    }
    channel.embeddedEventLoop.run()

    var out: [UInt8] = []
    while let b = try? channel.readOutbound(as: ByteBuffer.self) { out += b.readableBytesView }
    _ = try? channel.finish(acceptAlreadyClosed: true)

    let key = Array(secret.utf8)
    if mode == 1 || mode == 2 {
        precondition(!contains(out, key), "the real key reached the client")
    } else if contains(out, key) {
        precondition(contains(bytes, key), "the real key reached a client that never sent it")
    }
    for head in tap.heads { checkLogLine(head, host: identity) }
    return 0
}

#if !FUZZING
import FuzzReplay
/// Replays inputs without libFuzzer: `FuzzProxyHead FILE-OR-DIR...`.
@main struct Replay {
    static func main() {
        replayInputs(Array(CommandLine.arguments.dropFirst()), target: "FuzzProxyHead", fuzzOne)
    }
}
#endif
