import NIOCore

/// UDP: one datagram is one query; the answer goes back to the sender's address.
final class UDPQueryHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let filter: DNSFilter

    init(filter: DNSFilter) { self.filter = filter }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        let channel = context.channel
        filter.answer(bytes, tcp: false, on: context.eventLoop).whenSuccess { reply in
            guard let reply else { return }
            let out = AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: channel.allocator.buffer(bytes: reply))
            channel.writeAndFlush(out, promise: nil)
        }
    }

    /// A send error (the client went away: ICMP unreachable) concerns one datagram, not
    /// the listener.
    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}

/// TCP: queries framed by a two-byte length (RFC 1035 4.2.2).
struct TCPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

/// Answers each framed query on the same connection, in whatever order they finish
/// (DNS over TCP matches answers by id).
final class TCPQueryHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let filter: DNSFilter

    init(filter: DNSFilter) { self.filter = filter }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(unwrapInboundIn(data).readableBytesView)
        let channel = context.channel
        filter.answer(bytes, tcp: true, on: context.eventLoop).whenSuccess { reply in
            guard let reply else {
                // Nothing to answer on a stream: the client is not speaking DNS.
                channel.close(promise: nil)
                return
            }
            var out = channel.allocator.buffer(capacity: reply.count + 2)
            out.writeInteger(UInt16(reply.count))
            out.writeBytes(reply)
            channel.writeAndFlush(out, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
