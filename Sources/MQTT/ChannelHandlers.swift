import NIOCore

/// Turns the byte stream into ``MQTTInbound`` values with an ``MQTTPacketParser``.
struct MQTTPacketDecoder: ByteToMessageDecoder {
  typealias InboundOut = MQTTInbound

  var parser: MQTTPacketParser

  mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
    guard let inbound = try parser.next(from: &buffer) else { return .needMoreData }
    context.fireChannelRead(wrapInboundOut(inbound))
    return .continue
  }

  mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
    -> DecodingState
  {
    // A packet cut off by the connection's end is dropped: the session logic resends.
    try decode(context: context, buffer: &buffer)
  }
}

/// Writes ``MQTTPacket`` values as bytes.
struct MQTTPacketEncoder: MessageToByteEncoder {
  typealias OutboundIn = MQTTPacket

  func encode(data: MQTTPacket, out: inout ByteBuffer) throws {
    try data.encode(into: &out)
  }
}

/// Hands every inbound value to an async stream, which ends when the connection does (with the
/// error that ended it, if any).
final class InboundStreamHandler: ChannelInboundHandler {
  typealias InboundIn = MQTTInbound

  private let continuation: AsyncThrowingStream<MQTTInbound, any Error>.Continuation

  init(continuation: AsyncThrowingStream<MQTTInbound, any Error>.Continuation) {
    self.continuation = continuation
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    continuation.yield(unwrapInboundIn(data))
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    continuation.finish(throwing: error)
    context.close(promise: nil)
  }

  func channelInactive(context: ChannelHandlerContext) {
    continuation.finish()
    context.fireChannelInactive()
  }
}
