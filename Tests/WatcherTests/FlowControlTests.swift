import Foundation
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import Synchronization
import Testing

@testable import Watcher

/// What the connection-level transport does that NIOHTTP2's stream channels did before: give
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
    // The first message waits for the latch; the rest are echoed.
    let handler = ClosureHandler { request, _ in
      while !latch.isOpen { try await Task.sleep(for: .milliseconds(5)) }
      return .bytes(request.input)
    }
    let messageCount = 1000
    let message = Data(repeating: 7, count: 64 * 1024)
    try await withServedClient(handler) { client in
      let written = Counter()
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
          let replies = try await Pb_FxWatcher.Client(wrapping: client).calls(
            requestProducer: { writer in
              for index in 0..<messageCount {
                var numbered = message
                numbered[0] = UInt8(truncatingIfNeeded: index)
                try await writer.write(request(numbered))
                written.add()
              }
            },
            onResponse: { response in
              try await response.messages.reduce(into: [Data]()) { $0.append($1.output) }
            })
          // Nothing lost once the handler goes on: every reply, in order.
          #expect(replies.count == messageCount)
          #expect(replies.map { $0[0] } == (0..<messageCount).map { UInt8(truncatingIfNeeded: $0) })
          #expect(replies.allSatisfy { $0.count == message.count })
        }
        // Wait until the caller's writes stop getting through (or all got through).
        var last = -1
        while written.value != last && written.value < messageCount {
          last = written.value
          try await Task.sleep(for: .milliseconds(500))
        }
        // The stream's 4 MiB window (64 messages), the 16 that may wait and what the client
        // buffers (85-260 messages in all here), far from all 64 MiB: the server stopped giving the
        // window back. (Giving it back as DATA arrives, all 1000 get through.)
        #expect(written.value < messageCount / 2, "\(written.value) of \(messageCount) messages were taken")
        latch.open()
        try await group.waitForAll()
      }
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
    #expect(window.sizeChanged(to: 0) == 1000)
    // A peer that overran the window (after a settings change) still gets back to the target.
    #expect(window.sizeChanged(to: -200) == 1200)
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

  @Test func followsChangesOfTheInitialWindowSize() {
    var window = InboundWindow(target: 1000)
    #expect(window.initialSizeChanged(by: -600) == nil)  // nothing known yet
    #expect(window.sizeChanged(to: 1000) == nil)
    #expect(window.initialSizeChanged(by: -600) == 600)
  }

  @Test func neverAsksForMoreThanHTTP2sLargestIncrement() {
    var window = InboundWindow(target: Int(Int32.max))
    #expect(window.sizeChanged(to: -5) == Int(Int32.max))
  }
}
