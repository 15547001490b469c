import FxWatcherProto
#if canImport(Glibc)
import Glibc
#endif
import HandlerKit
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Synchronization
import Testing

@testable import Watcher

/// The connection as a raw HTTP/2 client sees it. Malformed request headers (RFC 9113 §8.2,
/// §8.3.1), sent by a client that does not check what it sends: each stream is reset with
/// PROTOCOL_ERROR and gets no response, and the connection goes on serving well-formed calls.
/// A graceful shutdown: two GOAWAYs, the open call answered, then the connection closed (one
/// GOAWAY and the close at once for an idle connection). A connection error closes it.
@Suite("HTTP/2 connection", .timeLimit(.minutes(1)))
struct HTTP2ConnectionTests {
  static let call: [(String, String)] = [
    (":method", "POST"), (":scheme", "http"), (":path", "/pb.FxWatcher/Call"), (":authority", "localhost"),
    ("content-type", "application/grpc"), ("te", "trailers"),
  ]

  /// Each a request block breaking one rule.
  static let malformed: [(String, [(String, String)])] = [
    ("an uppercase field name", call + [("X-Upper", "1")]),
    ("a field name with a space", call + [("x request", "1")]),
    ("a pseudo-header after a regular field", [(":method", "POST"), (":scheme", "http"), ("content-type", "application/grpc"), (":path", "/pb.FxWatcher/Call")]),
    ("no :scheme", call.filter { $0.0 != ":scheme" }),
    ("no :path", call.filter { $0.0 != ":path" }),
    ("no :method", call.filter { $0.0 != ":method" }),
    ("an empty :path", call.map { $0.0 == ":path" ? ($0.0, "") : $0 }),
    ("a space in :path", call.map { $0.0 == ":path" ? ($0.0, "/pb.FxWatcher/Call x") : $0 }),
    ("two :path", [(":path", "/pb.FxWatcher/Call")] + call),
    ("a :status", [(":status", "200")] + call),
    ("a :protocol", [(":protocol", "websocket")] + call),
    ("an unknown pseudo-header", [(":colour", "blue")] + call),
    ("a connection field", call + [("connection", "keep-alive")]),
    ("a transfer-encoding field", call + [("transfer-encoding", "chunked")]),
    ("te other than trailers", call.map { $0.0 == "te" ? ($0.0, "gzip") : $0 }),
    ("a LF in a value", call + [("x-request-id", "a\nb")]),
    ("a NUL in a value", call + [("x-request-id", "a\u{0}b")]),
    ("a CONNECT with a :path", [(":method", "CONNECT"), (":authority", "localhost"), (":path", "/")]),
  ]

  @Test func eachMalformedRequestIsResetAndTheConnectionGoesOn() async throws {
    try await withServedHandler(ClosureHandler { request, _ in .bytes(request.input) }) { port in
      let connection = try await RawHTTP2Connection(port: port)
      for (rule, headers) in Self.malformed {
        let frames = try await connection.exchange(headers, message: Self.message("x"))
        #expect(frames == [.reset(.protocolError)], "\(rule)")
      }
      // Malformed trailers after a well-formed start: a pseudo-header, an uppercase name.
      for trailers in [[(":path", "/")], [("X-Upper-Trailer", "0")]] {
        let frames = try await connection.exchange(Self.call, message: Self.message("x"), trailers: trailers)
        #expect(frames == [.reset(.protocolError)], "\(trailers)")
      }
      // Well-formed requests on the same connection: a CONNECT is refused as before (405), a
      // call with repeated regular fields and well-formed trailers is answered. (The uppercase
      // names above differ from these: the client's HPACK encoder matches names without case,
      // and would send this call's names as the table's uppercase ones.)
      let connect = try await connection.exchange([(":method", "CONNECT"), (":authority", "localhost")], message: nil)
      #expect(connect.first == .headers(status: "405", grpcStatus: "13"))
      let answered = try await connection.exchange(
        Self.call + [("x-request-id", "a"), ("x-request-id", "b"), ("grpc-timeout", "5S")], message: Self.message("hi"),
        trailers: [("x-done", "yes")])
      #expect(answered == [.headers(status: "200", grpcStatus: nil), .data(Self.reply("hi")), .headers(status: nil, grpcStatus: "0")])
      try await connection.close()
    }
  }

  @Test func quiescingSendsTwoGoAwaysLetsTheOpenCallFinishThenCloses() async throws {
    let started = AsyncStream<Void>.makeStream()
    let latch = FlowControlTests.Latch()
    let handler = ClosureHandler { request, _ in
      started.continuation.yield()
      while !latch.isOpen { try await Task.sleep(for: .milliseconds(5)) }
      return .bytes(request.input)
    }
    try await withServedEndpoint(handler) { endpoint, port in
      let connection = try await RawHTTP2Connection(port: port)
      async let reply = connection.exchange(Self.call, message: Self.message("late"))
      var calls = started.stream.makeAsyncIterator()
      await calls.next()
      endpoint.beginGracefulShutdown()
      // The handler goes on once the client has the first GOAWAY (the loop may take its time to
      // get to the shutdown on a busy machine).
      while connection.goAways.value.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
      latch.open()
      // The call in its handler when the shutdown began is answered in full.
      #expect(try await reply == [.headers(status: "200", grpcStatus: nil), .data(Self.reply("late")), .headers(status: nil, grpcStatus: "0")])
      // Then the watcher closes the connection, having said first that it stops taking streams
      // and then which was the last it took.
      // (A frame of the client's crossing the last GOAWAY, such as a WINDOW_UPDATE, is no error.)
      try await connection.channel.closeFuture.get()
      #expect(connection.goAways.value == [.maxID, HTTP2StreamID(1)])
    }
  }

  @Test func quiescingAnIdleConnectionSaysItsLastStreamAndCloses() async throws {
    try await withServedEndpoint(ClosureHandler { request, _ in .bytes(request.input) }) { endpoint, port in
      let connection = try await RawHTTP2Connection(port: port)
      #expect(try await connection.exchange(Self.call, message: Self.message("x")).count == 3)
      endpoint.beginGracefulShutdown()
      try await connection.channel.closeFuture.get()
      #expect(connection.goAways.value.first == HTTP2StreamID(1))
    }
  }

  @Test func aConnectionErrorClosesTheConnection() async throws {
    try await withServedEndpoint(ClosureHandler { request, _ in .bytes(request.input) }) { _, port in
      let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port).get()
      var bytes = ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
      bytes.writeBytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  // SETTINGS, none
      // WINDOW_UPDATE of the connection's window by 0: a connection error (RFC 9113 §6.9).
      bytes.writeBytes([0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0])
      try await channel.writeAndFlush(bytes)
      let gaveUp = Mutex(false)
      let giveUp = channel.eventLoop.scheduleTask(in: .seconds(10)) {
        gaveUp.withLock { $0 = true }
        channel.close(promise: nil)
      }
      try await channel.closeFuture.get()
      giveUp.cancel()
      #expect(!gaveUp.withLock { $0 }, "the watcher left the connection open after its GOAWAY")
    }
  }

  @Test func theWarmUpIsAHealthCheckThatRunsNoHandlerAndLeavesNothingOpen() async throws {
    let calls = Counter()
    let handler = ClosureHandler { request, _ in
      calls.add()
      return .bytes(request.input)
    }
    try await withServedEndpoint(handler) { endpoint, _ in
      // A long timeout: the whole suite keeps both CPUs busy.
      #expect(await endpoint.makeWarmUpCall(timeout: .seconds(20)))
      await endpoint.warmUp()
      #expect(calls.value == 0)
      #expect(endpoint.liveStreams.value == 0)
      #expect(endpoint.openConnections == 0)
    }
  }

  @Test func theWarmUpSendsTheHeadersAGRPCClientSends() throws {
    var bytes = ByteBuffer(bytes: WarmUpCall.request)
    #expect(bytes.readString(length: 24) == "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    #expect(bytes.readBytes(length: 9) == [0, 0, 0, 4, 0, 0, 0, 0, 0])  // empty SETTINGS
    let header = bytes.readBytes(length: 9) ?? []
    try #require(header.count == 9)
    #expect(header[3...] == [1, 4, 0, 0, 0, 1])  // HEADERS, END_HEADERS, stream 1
    var block = bytes.readSlice(length: Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])) ?? ByteBuffer()
    var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
    let fields = try decoder.decodeHeaders(from: &block).map { ($0.name, $0.value) }
    #expect(fields.elementsEqual(
      [(":method", "POST"), (":scheme", "http"), (":path", "/grpc.health.v1.Health/Check"),
       ("content-type", "application/grpc"), ("te", "trailers")], by: ==))
    #expect(Array(bytes.readableBytesView) == [0, 0, 5, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0])  // DATA, END_STREAM
  }

  @Test func aWarmUpThatGetsNoReplyFailsInsteadOfWaiting() async throws {
    let group = MultiThreadedEventLoopGroup.singleton
    // A server end that closes as soon as it is set up, and one that reads the call and never
    // answers.
    let closing: @Sendable (any Channel) throws -> Void = { channel in
      channel.eventLoop.execute { channel.close(promise: nil) }
    }
    #expect(await WarmUpCall.run(servedBy: closing, group: group, timeout: .seconds(20)) == false)
    let started = ContinuousClock.now
    #expect(await WarmUpCall.run(servedBy: { _ in }, group: group, timeout: .milliseconds(300)) == false)
    #expect(ContinuousClock.now - started >= .milliseconds(300))
  }

  @Test func aWarmUpLeavesNoFileDescriptorOpen() async throws {
    try await withServedEndpoint(ClosureHandler { request, _ in .bytes(request.input) }) { endpoint, _ in
      // Both ends of each call's socket pair are closed once it returns: the hundred or more
      // descriptors a hundred calls would leave behind are not there (the suite beside this test
      // opens and closes its own, hence a margin).
      let before = try openFileDescriptorCount()
      for _ in 0..<100 {
        #expect(await endpoint.makeWarmUpCall(timeout: .seconds(20)))
      }
      #expect(try openFileDescriptorCount() < before + 50)
    }
  }

  private func openFileDescriptorCount() throws -> Int {
    let directory = try #require(opendir("/proc/self/fd"))
    defer { closedir(directory) }
    var count = 0
    while readdir(directory) != nil { count += 1 }
    return count
  }

  static func message(_ text: String) -> ByteBuffer {
    var request = Pb_Request()
    request.input = .init(text.utf8)
    return GRPCFrame.message(try! request.serializedBytes() as [UInt8], allocator: ByteBufferAllocator())
  }

  static func reply(_ text: String) -> [UInt8] {
    var reply = Pb_Reply()
    reply.output = text
    return Array(GRPCFrame.message(try! reply.serializedBytes() as [UInt8], allocator: ByteBufferAllocator()).readableBytesView)
  }
}

/// What a stream received, simplified for comparison.
enum ReceivedFrame: Equatable, Sendable {
  case headers(status: String?, grpcStatus: String?)
  case data([UInt8])
  case reset(HTTP2ErrorCode)
}

/// An HTTP/2 client connection that sends header blocks as given, unchecked.
struct RawHTTP2Connection {
  let channel: any Channel
  let multiplexer: NIOHTTP2Handler.StreamMultiplexer
  /// The last stream ids of the GOAWAY frames received, in order.
  let goAways = GoAwayRecorder()

  init(port: Int) async throws {
    var unchecked = NIOHTTP2Handler.ConnectionConfiguration()
    unchecked.headerBlockValidation = .disabled
    let configuration = unchecked
    let goAways = self.goAways
    let (channel, multiplexer) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .connect(host: "127.0.0.1", port: port) { channel in
        channel.eventLoop.makeCompletedFuture {
          let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .client, connectionConfiguration: configuration, streamConfiguration: .init()
          ) { stream in stream.eventLoop.makeSucceededVoidFuture() }
          try channel.pipeline.syncOperations.addHandler(goAways)
          return (channel, multiplexer)
        }
      }
    self.channel = channel
    self.multiplexer = multiplexer
  }

  /// Opens a stream, sends `headers`, `message` (if any) and `trailers` (if any; the last frame
  /// ends the stream) and returns what the stream received until it closed.
  func exchange(_ headers: [(String, String)], message: ByteBuffer?, trailers: [(String, String)]? = nil) async throws
    -> [ReceivedFrame]
  {
    let received = channel.eventLoop.makePromise(of: [ReceivedFrame].self)
    let stream = try await multiplexer.createStreamChannel { stream in
      stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(FrameRecorder(received)) }
    }.get()
    let block = HPACKHeaders(headers)
    var frames: [HTTP2Frame.FramePayload] = [.headers(.init(headers: block, endStream: message == nil && trailers == nil))]
    if let message { frames.append(.data(.init(data: .byteBuffer(message), endStream: trailers == nil))) }
    if let trailers { frames.append(.headers(.init(headers: HPACKHeaders(trailers), endStream: true))) }
    for frame in frames { stream.write(frame, promise: nil) }
    stream.flush()
    return try await received.futureResult.get()
  }

  func close() async throws {
    try await channel.close()
  }
}

/// Records the GOAWAY frames of a connection (its root stream's frames reach it).
final class GoAwayRecorder: ChannelInboundHandler, Sendable {
  typealias InboundIn = HTTP2Frame
  private let lastStreamIDs = Mutex<[HTTP2StreamID]>([])

  var value: [HTTP2StreamID] { lastStreamIDs.withLock { $0 } }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if case .goAway(let lastStreamID, _, _) = unwrapInboundIn(data).payload {
      lastStreamIDs.withLock { $0.append(lastStreamID) }
    }
  }
}

/// Records a stream's frames and hands them over when the stream closes.
final class FrameRecorder: ChannelInboundHandler, @unchecked Sendable {
  typealias InboundIn = HTTP2Frame.FramePayload
  private let received: EventLoopPromise<[ReceivedFrame]>
  private var frames: [ReceivedFrame] = []

  init(_ received: EventLoopPromise<[ReceivedFrame]>) {
    self.received = received
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .headers(let headers):
      frames.append(.headers(status: headers.headers.first(name: ":status"), grpcStatus: headers.headers.first(name: "grpc-status")))
    case .data(let data):
      if case .byteBuffer(let bytes) = data.data { frames.append(.data(Array(bytes.readableBytesView))) }
    case .rstStream(let code):
      frames.append(.reset(code))
    default:
      break
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    received.succeed(frames)
  }
}
