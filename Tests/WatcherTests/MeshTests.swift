import Foundation
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import Logging
import NIOHPACK
import Synchronization
import Testing

@testable import Watcher

@Suite("Mesh calls", .timeLimit(.minutes(1)))
struct MeshTests {
  @Test func addressesFollowTheTemplate() {
    let openFx = MeshAddress(template: "{function}.{namespace}:50052", namespace: "openfx-fn")
    #expect(openFx.resolve("sentiment")! == ("sentiment.openfx-fn", 50052))
    let local = MeshAddress(template: "[::1]:7000", namespace: "x")
    #expect(local.resolve("any")! == ("::1", 7000))
    for bad in ["", "evil.com:80/", "a b", "x#", String(repeating: "a", count: 254)] {
      #expect(openFx.resolve(bad) == nil, "\(bad)")
    }
    #expect(MeshAddress(template: "{function}", namespace: "n").resolve("f") == nil)
    // Every placeholder is filled, wherever it stands and however often; other text stays.
    let repeated = MeshAddress(template: "{function}-{function}.{namespace}.svc-ü{x}:50052", namespace: "fn")
    #expect(repeated.resolve("a.b")! == ("a.b-a.b.fn.svc-ü{x}", 50052))
    #expect(MeshAddress(template: "{namespace}:7{namespace}", namespace: "0").resolve("f")! == ("0", 70))
  }

  /// Records the timeout each call got.
  final class Recorder: MeshClient {
    let timeouts = Mutex<[Duration]>([])
    func call(_ function: String, input: Data, timeout: Duration) async throws -> Data {
      timeouts.withLock { $0.append(timeout) }
      return Data("\(function):".utf8) + input
    }
  }

  @Test func meshCallsAreBoundedByTheRequestsDeadline() async throws {
    let recorder = Recorder()
    let unbounded = Context(mesh: recorder)
    #expect(try await unbounded.mesh.call("f", text: "x") == "f:x")
    let bounded = Context(deadline: .now + .seconds(2), mesh: recorder)
    _ = try await bounded.mesh.call("f", text: "x", timeout: .seconds(10))
    _ = try await unbounded.mesh.call("f", text: "x", timeout: .milliseconds(300))
    let timeouts = recorder.timeouts.withLock { $0 }
    #expect(timeouts[0] == Mesh.defaultTimeout)
    #expect(timeouts[1] <= .seconds(2) && timeouts[1] > .seconds(1))
    #expect(timeouts[2] == .milliseconds(300))
    let expired = Context(deadline: .now - .seconds(1), mesh: recorder)
    let error = await #expect(throws: HandlerError.self) { _ = try await expired.mesh.call("f", text: "x") }
    #expect(error?.code == .deadlineExceeded)
    let none = await #expect(throws: HandlerError.self) { _ = try await Context().mesh.call("f", text: "x") }
    #expect(none?.code == .failedPrecondition)
  }

  /// Serves `handler` as a watcher's `pb.FxWatcher` on a free loopback port.
  func withCallee(
    _ handler: any Handler,
    _ body: @Sendable (Int) async throws -> Void
  ) async throws {
    try await withServedHandler(handler, functionName: "callee", body)
  }

  @Test func callsAnotherWatcherAndPassesItsStatusThrough() async throws {
    let callee = ClosureHandler { r, c in
      if r.text == "missing" { throw HandlerError.notFound("no such sensor") }
      return .text("\(c.functionName)|\(r.info.trigger.name)|\(r.text ?? "")")
    }
    try await withCallee(callee) { port in
      let mesh = GRPCMeshClient(address: MeshAddress(template: "127.0.0.1:\(port)", namespace: "openfx-fn"))
      defer { mesh.shutdown() }
      let reply = try await mesh.call("sentiment", input: Data("hi".utf8), timeout: .seconds(5))
      #expect(String(decoding: reply, as: UTF8.self) == "sentiment|mesh|hi")
      let error = await #expect(throws: HandlerError.self) {
        _ = try await mesh.call("sentiment", input: Data("missing".utf8), timeout: .seconds(5))
      }
      #expect(error?.code == .notFound)
      #expect(error?.message.contains("no such sensor") == true)
    }
  }

  @Test func aSlowCalleeIsDeadlineExceeded() async throws {
    try await withCallee(ClosureHandler { _, _ in try await Task.sleep(for: .seconds(5)); return "late" }) { port in
      let mesh = GRPCMeshClient(address: MeshAddress(template: "127.0.0.1:\(port)", namespace: "n"))
      defer { mesh.shutdown() }
      let start = ContinuousClock.now
      let error = await #expect(throws: HandlerError.self) {
        _ = try await mesh.call("slow", input: Data(), timeout: .milliseconds(200))
      }
      #expect(error?.code == .deadlineExceeded, "\(String(describing: error))")
      #expect(ContinuousClock.now - start < .seconds(3))
    }
  }

  @Test func anUnreachableFunctionIsUnavailableNotACrash() async throws {
    let mesh = GRPCMeshClient(address: MeshAddress(template: "127.0.0.1:1", namespace: "n"))
    defer { mesh.shutdown() }
    let error = await #expect(throws: HandlerError.self) {
      _ = try await mesh.call("gone", input: Data(), timeout: .seconds(5))
    }
    #expect(error?.code == .unavailable)
    #expect(error?.message.contains("gone at 127.0.0.1:1") == true)
  }

  @Test func aStatusMessageArrivesAsTheCalleeWroteIt() async throws {
    let message = "센서 없음: 100% sure, tab\there 😀"
    try await withCallee(ClosureHandler { _, _ in throw HandlerError.notFound(message) }) { port in
      let mesh = GRPCMeshClient(address: MeshAddress(template: "127.0.0.1:\(port)", namespace: "n"))
      defer { mesh.shutdown() }
      let error = await #expect(throws: HandlerError.self) {
        _ = try await mesh.call("f", input: Data(), timeout: .seconds(5))
      }
      #expect(error?.code == .notFound)
      #expect(error?.message.hasSuffix("failed: \(message)") == true, "\(String(describing: error?.message))")
    }
  }

  @Test func aReplyOverFourMiBIsResourceExhaustedAndTheConnectionGoesOn() async throws {
    let callee = ClosureHandler { r, _ in
      r.text == "big" ? .bytes(Data(repeating: 0x61, count: 4 * 1024 * 1024 + 1)) : .text("small")
    }
    try await withCallee(callee) { port in
      let mesh = GRPCMeshClient(address: MeshAddress(template: "127.0.0.1:\(port)", namespace: "n"))
      defer { mesh.shutdown() }
      let error = await #expect(throws: HandlerError.self) {
        _ = try await mesh.call("f", input: Data("big".utf8), timeout: .seconds(5))
      }
      #expect(error?.code == .resourceExhausted)
      let reply = try await mesh.call("f", input: Data("x".utf8), timeout: .seconds(5))
      #expect(reply == Data("small".utf8))
    }
  }

  @Test func manyConcurrentCallsShareTheConnection() async throws {
    try await withCallee(ClosureHandler { r, _ in .text("re:" + (r.text ?? "")) }) { port in
      let mesh = GRPCMeshClient(address: MeshAddress(template: "127.0.0.1:\(port)", namespace: "n"))
      defer { mesh.shutdown() }
      try await withThrowingTaskGroup(of: Void.self) { group in
        for index in 0..<200 {
          group.addTask {
            let reply = try await mesh.call("f", input: Data("\(index)".utf8), timeout: .seconds(10))
            #expect(String(decoding: reply, as: UTF8.self) == "re:\(index)")
          }
        }
        try await group.waitForAll()
      }
    }
  }

  @Test func cancellingTheCallerCancelsTheCalleesCall() async throws {
    let (started, startedSink) = AsyncStream.makeStream(of: Void.self)
    let (ended, endedSink) = AsyncStream.makeStream(of: Bool.self)
    let callee = ClosureHandler { _, _ in
      startedSink.yield()
      do {
        try await Task.sleep(for: .seconds(20))
        endedSink.yield(false)
      } catch {
        endedSink.yield(Task.isCancelled)
      }
      return "late"
    }
    try await withCallee(callee) { port in
      let mesh = GRPCMeshClient(address: MeshAddress(template: "127.0.0.1:\(port)", namespace: "n"))
      defer { mesh.shutdown() }
      let call = Task { try await mesh.call("f", input: Data(), timeout: .seconds(20)) }
      var startedCalls = started.makeAsyncIterator()
      _ = await startedCalls.next()
      call.cancel()
      let error = await #expect(throws: HandlerError.self) { _ = try await call.value }
      #expect(error?.code == .cancelled)
      var endings = ended.makeAsyncIterator()
      #expect(await endings.next() == true, "the callee's call was cancelled, not left to run")
    }
  }

  @Test func aConnectionTheCalleeClosesIsReplaced() async throws {
    let calls = Counter()
    try await withServedEndpoint(ClosureHandler { _, _ in
      calls.add()
      return .text("call \(calls.value)")
    }) { endpoint, port in
      let mesh = GRPCMeshClient(address: MeshAddress(template: "127.0.0.1:\(port)", namespace: "n"))
      defer { mesh.shutdown() }
      for round in 1...5 {
        let reply = try await mesh.call("f", input: Data(), timeout: .seconds(5))
        #expect(String(decoding: reply, as: UTF8.self) == "call \(round)")
        // The callee says GOAWAY and closes the connection; the next call, sent before or after
        // the client has seen it, gets through on a new one.
        endpoint.quiesceOpenConnections()
      }
    }
  }

  @Test func aConnectionIdleForItsTimeoutIsClosedAndTheNextCallReconnects() async throws {
    try await withServedEndpoint(ClosureHandler { _, _ in "ok" }) { endpoint, port in
      let mesh = GRPCMeshClient(
        address: MeshAddress(template: "127.0.0.1:\(port)", namespace: "n"), idleTimeout: .milliseconds(200))
      defer { mesh.shutdown() }
      for _ in 1...2 {
        #expect(try await mesh.call("f", input: Data(), timeout: .seconds(5)) == Data("ok".utf8))
        #expect(endpoint.openConnections == 1)
        let start = ContinuousClock.now
        while endpoint.openConnections > 0 && ContinuousClock.now - start < .seconds(5) {
          try await Task.sleep(for: .milliseconds(20))
        }
        #expect(endpoint.openConnections == 0, "the idle connection was not closed")
      }
    }
  }

  @Test func aConnectionInUseIsNotClosedForIdleness() {
    let usage = MeshConnection.Usage()
    #expect(usage.begin())
    #expect(usage.end(idleTimeout: .seconds(60)) == .checkIdle(.seconds(60)))
    #expect(usage.begin())
    #expect(usage.idleCheck(idleTimeout: .zero) == .nothing, "a call is open")
    // The call that just ended starts a new idle period; the check that follows sees it.
    #expect(usage.end(idleTimeout: .seconds(60)) == .checkIdle(.seconds(60)))
    guard case .checkIdle(let delay) = usage.idleCheck(idleTimeout: .seconds(60)) else {
      Issue.record("closed a connection idle for less than its timeout")
      return
    }
    #expect(delay > .seconds(59))
    #expect(usage.idleCheck(idleTimeout: .zero) == .closeNow)
    #expect(!usage.begin(), "a connection closed for idleness takes no call")
  }

  @Test func timeoutsAreWrittenAsGRPCTimeoutHeaders() {
    #expect(GRPCTimeout.header(for: .milliseconds(300)) == "300000u")
    #expect(GRPCTimeout.header(for: .nanoseconds(1)) == "1u")
    #expect(GRPCTimeout.header(for: .seconds(100)) == "100000m")
    #expect(GRPCTimeout.header(for: .seconds(200_000)) == "200000S")
    #expect(GRPCTimeout.header(for: .seconds(Int64.max)) == "99999999S")
    for timeout: Duration in [.microseconds(1500), .seconds(30), .seconds(100_000), .milliseconds(1)] {
      #expect(GRPCTimeout.parse(GRPCTimeout.header(for: timeout))! >= timeout)
    }
  }

  @Test func statusMessagesArePercentDecoded() {
    #expect(GRPCStatus.decodedMessage("a%20b%25c") == "a b%c")
    #expect(GRPCStatus.decodedMessage("%E2%82%AC 100%") == "€ 100%")
    #expect(GRPCStatus.decodedMessage("%zz%4") == "%zz%4")
    #expect(GRPCStatus.decodedMessage("%FF") == "\u{FFFD}")
  }

  @Test func repliesThatAreNotGRPCFailWithTheCodesGRPCGivesThem() {
    func code(_ headers: HPACKHeaders) -> HandlerError.Code? {
      UnaryCallHandler.failure(ofResponseHeaders: headers)?.code
    }
    #expect(code([":status": "404", "content-type": "text/html"]) == .unimplemented)
    #expect(code([":status": "503"]) == .unavailable)
    #expect(code([":status": "401"]) == .unauthenticated)
    #expect(code([":status": "500"]) == .unknown)
    #expect(code([":status": "200", "content-type": "text/html"]) == .unknown)
    #expect(code([":status": "200", "content-type": "application/grpc+proto"]) == nil)
    #expect(code([":status": "200", "content-type": "application/grpc"]) == nil)
    #expect(UnaryCallHandler.failure(ofReset: .refusedStream).wasNotProcessed)
    #expect(UnaryCallHandler.failure(ofReset: .cancel).code == .cancelled)
    #expect(UnaryCallHandler.failure(ofReset: .protocolError).code == .internalError)
  }
}
