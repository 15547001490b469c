import Foundation
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import NIOCore
import NIOHPACK
import NIOHTTP2
import Synchronization
import Testing

@testable import Watcher

/// What the connection does for its streams: give
/// flow-control windows back, hold back a caller that outruns its handler, and let go of every
/// ended stream.
@Suite("Flow control and stream lifetimes", .timeLimit(.minutes(1)))
struct FlowControlTests {
  /// A switch the test flips once, seen by handlers on other threads.
  final class Latch: Sendable {
    private let opened = Mutex(false)
    func open() { opened.withLock { $0 = true } }
    var isOpen: Bool { opened.withLock { $0 } }
  }

  func request(_ input: Data) -> Pb_Request {
    var request = Pb_Request()
    request.input = input
    return request
  }

  @Test func aCallerOutrunningItsStreamsHandlerIsHeldBackUntilTheHandlerCatchesUp() async throws {
    let latch = Latch()
    // Every message waits for the latch, then is echoed.
    let handler = ClosureHandler { request, _ in
      while !latch.isOpen { try await Task.sleep(for: .milliseconds(5)) }
      return .bytes(request.input)
    }
    let messageCount = 400
    var request = Pb_Request()
    request.input = Data(repeating: 7, count: 64 * 1024)
    let message = GRPCFrame.message(try request.serializedBytes() as [UInt8], allocator: ByteBufferAllocator())
    try await withServedEndpoint(handler) { _, port in
      // NIOHTTP2's own client: a DATA frame's write completes once flow control let it out.
      let connection = try await RawHTTP2Connection(port: port)
      let received = connection.channel.eventLoop.makePromise(of: [ReceivedFrame].self)
      let stream = try await connection.multiplexer.createStreamChannel { stream in
        stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(FrameRecorder(received)) }
      }.get()
      var headers = HTTP2ConnectionTests.call
      headers[2] = (":path", "/pb.FxWatcher/Calls")
      let sent = Counter()
      stream.write(HTTP2Frame.FramePayload.headers(.init(headers: HPACKHeaders(headers))), promise: nil)
      for index in 0..<messageCount {
        let written = stream.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenSuccess { sent.add() }
        let data = HTTP2Frame.FramePayload.Data(data: .byteBuffer(message), endStream: index == messageCount - 1)
        stream.write(HTTP2Frame.FramePayload.data(data), promise: written)
      }
      stream.flush()
      // Wait until no more gets out.
      var last = -1
      while sent.value != last {
        last = sent.value
        try await Task.sleep(for: .milliseconds(300))
      }
      // The stream's 4 MiB window (64 messages) and the 16 that may wait: far from all 400 (25 MiB). (Giving the window back as DATA
      // arrives, all get out.)
      #expect(sent.value < 160, "\(sent.value) of \(messageCount) messages got out")
      latch.open()
      // Nothing lost once the handler goes on: every reply, then OK.
      let frames = try await received.futureResult.get()
      #expect(sent.value == messageCount)
      let replyBytes = frames.reduce(0) { total, frame in
        if case .data(let bytes) = frame { total + bytes.count } else { total }
      }
      #expect(replyBytes == messageCount * (message.readableBytes))  // pb.Messages frames as pb.Request
      #expect(frames.last == .headers(status: nil, grpcStatus: "0"))
    }
  }

  @Test func everyEndedStreamIsLetGo() async throws {
    let handler = ClosureHandler { request, _ in
      switch request.text {
      case "fail": throw HandlerError(.invalidArgument, "as asked")
      case "slow": try await Task.sleep(for: .seconds(30))
      default: break
      }
      return .bytes(request.input)
    }
    try await withServedEndpoint(handler) { endpoint, port in
      let transport = try HTTP2ClientTransport.Posix(
        target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
      try await withGRPCClient(transport: transport) { client in
        let watcher = Pb_FxWatcher.Client(wrapping: client)
        for index in 0..<50 {
          #expect(try await watcher.call(request(Data("\(index)".utf8))).output == "\(index)")
        }
        for _ in 0..<10 {
          await #expect(throws: RPCError.self) { _ = try await watcher.call(request(Data("fail".utf8))) }
        }
        // Past their deadline, and cancelled by the caller mid-stream.
        var options = CallOptions.defaults
        options.timeout = .milliseconds(50)
        for _ in 0..<5 {
          await #expect(throws: RPCError.self) {
            _ = try await watcher.call(request(Data("slow".utf8)), options: options)
          }
        }
        let stream = Task {
          try await watcher.calls(
            requestProducer: { writer in
              try await writer.write(request(Data("slow".utf8)))
              try await Task.sleep(for: .seconds(30))
            },
            onResponse: { response in for try await _ in response.messages {} })
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(endpoint.liveStreams.value == 1)
        stream.cancel()
        _ = await stream.result
        // Every stream object is freed, not only forgotten by its connection.
        let until = ContinuousClock.now + .seconds(5)
        while endpoint.liveStreams.value > 0 && ContinuousClock.now < until {
          try await Task.sleep(for: .milliseconds(20))
        }
        #expect(endpoint.liveStreams.value == 0)
      }
    }
  }
}

@Suite("InboundWindow")
struct InboundWindowTests {
  @Test func givesTheWindowBackToItsTargetOnceHalfIsUsed() {
    var window = InboundWindow(target: 1000)
    #expect(window.sizeChanged(to: 1000) == nil)
    #expect(window.sizeChanged(to: 501) == nil)
    #expect(window.sizeChanged(to: 500) == 500)
    #expect(window.updateWritten(500) == nil)
    #expect(window.sizeChanged(to: 0) == 1000)
    #expect(window.updateWritten(1000) == nil)
    // A peer that overran the window (after a settings change) still gets back to the target.
    #expect(window.sizeChanged(to: -200) == 1200)
  }

  @Test func anUpdateNotYetWrittenIsNotAskedForAgain() {
    var window = InboundWindow(target: 1000)
    #expect(window.sizeChanged(to: 500) == 500)
    // More DATA in the same loop tick, before the update is written: it only tops up to the target.
    #expect(window.sizeChanged(to: 400) == nil)
    #expect(window.sizeChanged(to: 0) == 500)
    #expect(window.sizeChanged(to: -100) == nil)
    // Written, the updates count as the window's own (-100 + 1000), as the connection's count does.
    #expect(window.updateWritten(500) == nil)
    #expect(window.updateWritten(500) == nil)
    #expect(window.sizeChanged(to: 900) == nil)
    #expect(window.sizeChanged(to: 400) == 600)
  }

  @Test func heldBytesAreGivenBackOnlyWhenReleased() {
    var window = InboundWindow(target: 1000)
    window.hold(400)
    #expect(window.sizeChanged(to: 600) == nil)
    window.hold(300)
    #expect(window.sizeChanged(to: 300) == nil)
    #expect(window.releaseHeld() == 700)
    #expect(window.held == 0)
  }

  @Test func neverAsksForMoreThanHTTP2sLargestIncrement() {
    var window = InboundWindow(target: Int(Int32.max))
    #expect(window.sizeChanged(to: -5) == Int(Int32.max))
  }
}
