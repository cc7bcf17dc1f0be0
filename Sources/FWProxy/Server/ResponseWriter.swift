import NIOCore
import NIOHTTP1

/// Writes fwctl's own responses: refusals a person can read (status, a one-line reason in
/// the body, and X-Fwctl-Reason) and the CONNECT acceptance.
enum ResponseWriter {
    static func refuse(_ r: Refusal, context: ChannelHandlerContext, wrap: (HTTPServerResponsePart) -> NIOAny) {
        var headers = HTTPHeaders()
        let body = "fwctl: \(r.reason)\n"
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        headers.add(name: "X-Fwctl-Reason", value: r.reason)
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: r.status), headers: headers)
        context.write(wrap(.head(head)), promise: nil)
        var buf = context.channel.allocator.buffer(capacity: body.utf8.count)
        buf.writeString(body)
        context.write(wrap(.body(.byteBuffer(buf))), promise: nil)
        context.writeAndFlush(wrap(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    /// Written as raw bytes after the HTTP codecs are gone: a 2xx answer to CONNECT must
    /// carry neither Content-Length nor Transfer-Encoding, which the encoder would add.
    static func connectEstablished(context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        var buf = context.channel.allocator.buffer(capacity: 40)
        buf.writeString("HTTP/1.1 200 Connection established\r\n\r\n")
        return context.writeAndFlush(NIOAny(buf))
    }
}
