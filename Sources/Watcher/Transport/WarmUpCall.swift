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
    var bytes = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    bytes += frameHeader(length: 0, type: FrameType.settings, flags: 0, stream: 0)
    var block: [UInt8] = [0x83, 0x86]  // :method POST and :scheme http, from the static table
    block += literal(nameIndex: [0x04], value: "/grpc.health.v1.Health/Check")  // :path
    block += literal(nameIndex: [0x0f, 0x10], value: "application/grpc")  // content-type (index 31)
    block += [0x00] + string("te") + string("trailers")  // a literal name
    bytes += frameHeader(length: block.count, type: FrameType.headers, flags: Flag.endHeaders, stream: 1) + block
    bytes += frameHeader(length: 5, type: FrameType.data, flags: Flag.endStream, stream: 1) + [0, 0, 0, 0, 0]
    return bytes
  }()

  enum FrameType {
    static let data: UInt8 = 0x0
    static let headers: UInt8 = 0x1
    static let rstStream: UInt8 = 0x3
    static let settings: UInt8 = 0x4
    static let goAway: UInt8 = 0x7
  }

  enum Flag {
    static let endStream: UInt8 = 0x1
    static let ack: UInt8 = 0x1
    static let endHeaders: UInt8 = 0x4
  }

  static func frameHeader(length: Int, type: UInt8, flags: UInt8, stream: UInt32) -> [UInt8] {
    [UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length),
     type, flags,
     UInt8(truncatingIfNeeded: stream >> 24), UInt8(truncatingIfNeeded: stream >> 16),
     UInt8(truncatingIfNeeded: stream >> 8), UInt8(truncatingIfNeeded: stream)]
  }

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
      while let header = received.getBytes(at: received.readerIndex, length: 9) {
        let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
        guard received.readableBytes >= 9 + length else { break }
        received.moveReaderIndex(forwardBy: 9 + length)
        let (type, flags) = (header[3], header[4])
        let stream = UInt32(header[5] & 0x7f) << 24 | UInt32(header[6]) << 16 | UInt32(header[7]) << 8 | UInt32(header[8])
        switch type {
        case FrameType.settings where flags & Flag.ack == 0:
          let ack = WarmUpCall.frameHeader(length: 0, type: FrameType.settings, flags: Flag.ack, stream: 0)
          context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: ack)), promise: nil)
        case FrameType.data where stream == 1 && length >= 5:
          gotMessage = true
        case FrameType.headers where stream == 1 && flags & Flag.endStream != 0:
          answered.succeed(gotMessage)
        case FrameType.rstStream where stream == 1, FrameType.goAway:
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
