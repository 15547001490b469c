import Foundation
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import Logging
import Synchronization
import Testing

@testable import Watcher

/// The byte-safe, streaming, gateway and health methods over the watcher's HTTP/2 transport on
/// loopback, with grpc-swift's generated clients.
@Suite("Byte-safe, streaming, gateway and health services", .timeLimit(.minutes(1)))
struct WireSurfaceTests {
  func withClient(
    _ handler: any Handler,
    health: HealthStatus = HealthStatus(),
    _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Void
  ) async throws {
    try await withServedClient(handler, functionName: "imgprocessing", health: health, body)
  }

  static let jpegLike = Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0xFF, 0xD9])

  func request(_ input: Data) -> Pb_Request {
    var request = Pb_Request()
    request.input = input
    return request
  }

  @Test func callBytesCarriesBinaryOutputUntouched() async throws {
    try await withClient(Echoing()) { client in
      let reply = try await Pb_FxWatcher.Client(wrapping: client).callBytes(request(Self.jpegLike))
      #expect(reply.output == Self.jpegLike)
    }
  }

  @Test func callsAnswersEachRequestInOrderOnOneStream() async throws {
    let numbered = ClosureHandler { r, _ in .bytes(Data("reply to ".utf8) + r.input) }
    try await withClient(numbered) { client in
      let outputs = try await Pb_FxWatcher.Client(wrapping: client).calls(
        requestProducer: { writer in
          for n in 0..<50 { try await writer.write(request(Data("\(n)".utf8))) }
        },
        onResponse: { response in
          try await response.messages.reduce(into: [String]()) { $0.append(String(decoding: $1.output, as: UTF8.self)) }
        })
      #expect(outputs == (0..<50).map { "reply to \($0)" })
    }
  }

  @Test func aFailingRequestEndsTheStreamWithItsStatus() async throws {
    let picky = ClosureHandler { r, _ in
      guard r.text != "bad" else { throw HandlerError.invalidArgument("frame 2 is not an image") }
      return .bytes(r.input)
    }
    try await withClient(picky) { client in
      let error = await #expect(throws: RPCError.self) {
        try await Pb_FxWatcher.Client(wrapping: client).calls(
          requestProducer: { writer in
            for text in ["ok", "bad", "never"] { try await writer.write(request(Data(text.utf8))) }
          },
          onResponse: { response in for try await _ in response.messages {} })
      }
      #expect(error?.code == .invalidArgument)
      #expect(error?.message == "frame 2 is not an image")
    }
  }

  @Test func callStreamSendsEveryOutputAStreamingHandlerWrites() async throws {
    try await withClient(Countdown()) { client in
      let outputs = try await Pb_FxWatcher.Client(wrapping: client).callStream(request(Data("4".utf8))) { response in
        try await response.messages.reduce(into: [String]()) { $0.append(String(decoding: $1.output, as: UTF8.self)) }
      }
      #expect(outputs == ["4\n", "3\n", "2\n", "1\n"])
    }
  }

  @Test func theGatewaySurfaceServesTheHostedFunctionOnly() async throws {
    let describe = ClosureHandler { r, c in .text("\(c.functionName)/\(r.info.trigger.name)/\(r.text ?? "")") }
    try await withClient(describe) { client in
      let gateway = Pb_FxGateway.Client(wrapping: client)
      var invocation = Pb_InvokeServiceRequest()
      invocation.service = "imgprocessing"
      invocation.input = Data("frame".utf8)
      #expect(try await gateway.invoke(invocation).msg == "imgprocessing/grpc/frame")

      invocation.service = "sentiment-analysis"
      let error = await #expect(throws: RPCError.self) { _ = try await gateway.invoke(invocation) }
      #expect(error?.code == .notFound)
      #expect(error?.message.contains("\"imgprocessing\"") == true)

      let streamed = try await gateway.invokes(
        requestProducer: { writer in
          for n in 0..<3 {
            var frame = Pb_InvokeServiceRequest()
            frame.service = "imgprocessing"
            frame.input = Data("f\(n)".utf8)
            try await writer.write(frame)
          }
        },
        onResponse: { response in
          try await response.messages.reduce(into: [String]()) { $0.append(String(decoding: $1.output, as: UTF8.self)) }
        })
      #expect(streamed == ["imgprocessing/grpc/f0", "imgprocessing/grpc/f1", "imgprocessing/grpc/f2"])
    }
  }

  @Test func healthFollowsTheWatchersStateAndWatchEndsWhenItDrains() async throws {
    let health = HealthStatus()
    try await withClient(Echoing(), health: health) { client in
      let probe = Grpc_Health_V1_Health.Client(wrapping: client)
      var overall = Grpc_Health_V1_HealthCheckRequest()
      #expect(try await probe.check(overall).status == .notServing)
      health.markServing()
      #expect(try await probe.check(overall).status == .serving)
      overall.service = "pb.FxWatcher"
      #expect(try await probe.check(overall).status == .serving)
      var unknown = Grpc_Health_V1_HealthCheckRequest()
      unknown.service = "pb.Nope"
      let error = await #expect(throws: RPCError.self) { _ = try await probe.check(unknown) }
      #expect(error?.code == .notFound)

      let seen = Seen()
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
          try await probe.watch(Grpc_Health_V1_HealthCheckRequest()) { response in
            for try await message in response.messages { seen.statuses.withLock { $0.append(message.status) } }
          }
        }
        // Drain only once the watch has reported the current state.
        while seen.statuses.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(5)) }
        health.markDraining()
        try await group.waitForAll()
      }
      #expect(seen.statuses.withLock { $0 } == [.serving, .notServing])
      #expect(try await probe.check(Grpc_Health_V1_HealthCheckRequest()).status == .notServing)
    }
  }

  @Test func theCallersGRPCTimeoutBecomesTheDeadline() {
    #expect(GRPCTimeout.parse("250m") == .milliseconds(250))
    #expect(GRPCTimeout.parse("3S") == .seconds(3))
    #expect(GRPCTimeout.parse("1H") == .seconds(3600))
    #expect(GRPCTimeout.parse("99999999n") == .nanoseconds(99_999_999))
    for bad in ["", "m", "5", "5x", "123456789m", "-5m"] { #expect(GRPCTimeout.parse(bad) == nil) }
  }
}

@Suite("Health state")
struct HealthStatusTests {
  @Test func observersSeeTheCurrentStateThenChangesAndEndWhenDraining() async {
    let health = HealthStatus()
    var early = health.observe().makeAsyncIterator()
    #expect(await early.next() == false)
    health.markServing()
    #expect(await early.next() == true)
    health.markServing()  // no change, no update
    var late = health.observe().makeAsyncIterator()
    #expect(await late.next() == true)
    health.markDraining()
    health.markServing()  // draining is final
    #expect(await early.next() == false)
    #expect(await early.next() == nil)
    #expect(await late.next() == false)
    #expect(await late.next() == nil)
    #expect(await Array(health.observe()) == [false])
    #expect(!health.isServing)
  }

  @Test func aSlowObserverGetsTheLatestState() async {
    let health = HealthStatus()
    let slow = health.observe()
    health.markServing()
    health.markDraining()
    #expect(await Array(slow) == [false])
  }
}

extension Array {
  init(_ stream: AsyncStream<Element>) async {
    self = []
    for await element in stream { append(element) }
  }
}

/// The statuses a health `Watch` reported, as they arrive.
private final class Seen: Sendable {
  let statuses = Mutex<[Grpc_Health_V1_HealthCheckResponse.ServingStatus]>([])
}
