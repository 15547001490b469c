import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A `grpc.health.v1.Health/Check` call made to the watcher itself with a few fixed bytes of
/// HTTP/2, over a connected pair of Unix sockets whose one end is set up as the server sets up
/// an accepted connection: it runs the server's whole path for a call (the socket channel, the
/// pipeline, HTTP/2, the stream, the method, the reply) and next to nothing of a client's (no
/// listener, no connect, no address), so a fresh process's set-up for that path is done before
/// its first caller's call, and can be done before its ports are bound.
enum WarmUpCall {
  /// Makes the call to a connection that `serve` sets up (on its event loop, as a server's child
  /// channel initializer does) and closes both ends; returns whether the reply came whole (a
  /// message, then the trailers) within `timeout`.
  static func run(
    servedBy serve: @escaping @Sendable (any Channel) throws -> Void, group: any EventLoopGroup, timeout: TimeAmount
  ) async -> Bool {
    var ends: (served: CInt, calling: CInt) = (-1, -1)
    let made = withUnsafeMutableBytes(of: &ends) { bytes in
      socketpair(AF_UNIX, streamSocketType, 0, bytes.baseAddress?.assumingMemoryBound(to: CInt.self))
    }
    guard made == 0 else { return false }
    let eventLoop = group.any()
    // Each end belongs to its channel from here on (closed with it, or by NIO if it fails to
    // set the channel up).
    let served = ClientBootstrap(group: eventLoop)
      .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try serve(channel) } }
      .withConnectedSocket(ends.served)
    let answered = eventLoop.makePromise(of: Bool.self)
    let calling = ClientBootstrap(group: eventLoop)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(ReplyReader(answered: answered))
        }
      }
      .withConnectedSocket(ends.calling)
    let giveUp = eventLoop.scheduleTask(in: timeout) { answered.succeed(false) }
    calling.whenFailure { _ in answered.succeed(false) }
    served.whenFailure { _ in answered.succeed(false) }
    let result = (try? await answered.futureResult.get()) ?? false
    giveUp.cancel()
    for channel in [served, calling] {
      try? await channel.get().close()
    }
    return result
  }

  /// The handler types the call adds to its end (``ConformanceLookups``).
  static var handlerTypes: [any ChannelHandler.Type] { [ReplyReader.self] }

  #if canImport(Glibc)
  private static let streamSocketType = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
  #else
  private static let streamSocketType = SOCK_STREAM | SOCK_CLOEXEC
  #endif

  /// The client's side of the connection, written at once: the preface, empty SETTINGS, the
  /// request's HEADERS (HPACK literals, no Huffman code, no indexing) and one DATA frame with an
  /// empty `HealthCheckRequest` that ends the stream.
  static let request: [UInt8] = {
    var block: [UInt8] = [0x83, 0x86]  // :method POST and :scheme http, from the static table
    block += literal(nameIndex: [0x04], value: "/grpc.health.v1.Health/Check")  // :path
    block += literal(nameIndex: [0x0f, 0x10], value: "application/grpc")  // content-type (index 31)
    block += [0x00] + string("te") + string("trailers")  // a literal name
    var bytes = ByteBuffer(bytes: HTTP2Wire.clientPreface)
    bytes.writeHTTP2FrameHeader(length: 0, type: HTTP2Wire.FrameType.settings, streamID: 0)
    bytes.writeHTTP2FrameHeader(
      length: block.count, type: HTTP2Wire.FrameType.headers, flags: HTTP2Wire.Flags.endHeaders, streamID: 1)
    bytes.writeBytes(block)
    bytes.writeHTTP2FrameHeader(length: 5, type: HTTP2Wire.FrameType.data, flags: HTTP2Wire.Flags.endStream, streamID: 1)
    bytes.writeBytes([0, 0, 0, 0, 0])
    return Array(bytes.readableBytesView)
  }()

  /// A header field without indexing whose name is the static table's entry `nameIndex`
  /// (already in HPACK's 4-bit prefix form).
  private static func literal(nameIndex: [UInt8], value: String) -> [UInt8] {
    nameIndex + string(value)
  }

  /// An HPACK string literal, not Huffman-coded; shorter than 127 bytes.
  private static func string(_ text: String) -> [UInt8] {
    [UInt8(text.utf8.count)] + Array(text.utf8)
  }

  /// Reads the server's frames: acknowledges its SETTINGS and settles `answered` with whether
  /// stream 1 got a message and then its trailers.
  private final class ReplyReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let answered: EventLoopPromise<Bool>
    private var received = ByteBuffer()
    private var gotMessage = false

    init(answered: EventLoopPromise<Bool>) {
      self.answered = answered
    }

    func channelActive(context: ChannelHandlerContext) {
      context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: WarmUpCall.request)), promise: nil)
      context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      var bytes = unwrapInboundIn(data)
      received.writeBuffer(&bytes)
      while let header = received.peekHTTP2FrameHeader() {
        guard received.readableBytes >= HTTP2Wire.frameHeaderLength + header.length else { break }
        received.moveReaderIndex(forwardBy: HTTP2Wire.frameHeaderLength + header.length)
        switch header.type {
        case HTTP2Wire.FrameType.settings where !header.has(HTTP2Wire.Flags.ack):
          var ack = context.channel.allocator.buffer(capacity: HTTP2Wire.frameHeaderLength)
          ack.writeHTTP2FrameHeader(length: 0, type: HTTP2Wire.FrameType.settings, flags: HTTP2Wire.Flags.ack, streamID: 0)
          context.writeAndFlush(wrapOutboundOut(ack), promise: nil)
        case HTTP2Wire.FrameType.data where header.streamID == 1 && header.length >= 5:
          gotMessage = true
        case HTTP2Wire.FrameType.headers where header.streamID == 1 && header.has(HTTP2Wire.Flags.endStream):
          answered.succeed(gotMessage)
        case HTTP2Wire.FrameType.rstStream where header.streamID == 1, HTTP2Wire.FrameType.goAway:
          answered.succeed(false)
        default:
          break
        }
      }
      received.discardReadBytes()
    }

    func channelInactive(context: ChannelHandlerContext) {
      answered.succeed(false)
      context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      answered.succeed(false)
      context.close(promise: nil)
    }
  }
}
