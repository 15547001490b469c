import Foundation
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import Logging
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
      #expect(error?.code == .deadlineExceeded)
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
}
