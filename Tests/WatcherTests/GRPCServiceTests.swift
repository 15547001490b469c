import Foundation
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import Logging
import Testing

@testable import Watcher

/// `pb.FxWatcher/Call` over the watcher's HTTP/2 transport on loopback, with grpc-swift's
/// generated client.
@Suite("pb.FxWatcher service", .timeLimit(.minutes(1)))
struct GRPCServiceTests {
  func withClient(
    _ handler: any Handler,
    _ body: @Sendable (Pb_FxWatcher.Client<HTTP2ClientTransport.Posix>) async throws -> Void
  ) async throws {
    try await withServedClient(handler) { client in try await body(Pb_FxWatcher.Client(wrapping: client)) }
  }

  func request(_ input: Data, _ configure: (inout Pb_Info) -> Void = { _ in }) -> Pb_Request {
    var request = Pb_Request()
    request.input = input
    configure(&request.info)
    return request
  }

  @Test func echoesTheInputAsOutput() async throws {
    try await withClient(ClosureHandler { r, _ in .bytes(r.input) }) { client in
      let reply = try await client.call(request(Data("Have a nice day\n".utf8)))
      #expect(reply.output == "Have a nice day\n")
      #expect(try await client.call(request(Data())).output == "")
    }
  }

  @Test func passesEveryInfoFieldToTheHandler() async throws {
    let describe = ClosureHandler { r, c in
      let i = r.info
      return .text(
        [c.functionName, i.timeout, i.runtime, i.limits.memory, i.limits.cpu, i.limits.gpu,
         i.trigger.name, i.trigger.topic, i.trigger.time].joined(separator: ","))
    }
    try await withClient(describe) { client in
      let reply = try await client.call(
        request(Data()) { info in
          info.functionName = "sentiment"
          info.timeout = "30s"
          info.runtime = "swift"
          info.limits.memory = "128Mi"
          info.limits.cpu = "500m"
          info.limits.gpu = "1"
          info.trigger.name = "grpc"
          info.trigger.topic = "t"
          info.trigger.time = "2019-01-21T19:07:28Z"
        })
      #expect(reply.output == "sentiment,30s,swift,128Mi,500m,1,grpc,t,2019-01-21T19:07:28Z")
    }
  }

  @Test func usesTheCallersRequestID() async throws {
    try await withClient(ClosureHandler { _, c in .text(c.requestID) }) { client in
      let reply = try await client.call(request(Data()), metadata: ["x-request-id": "gw-42"])
      #expect(reply.output == "gw-42")
    }
  }

  @Test func aThrownErrorIsTheCallersStatusAndTheServiceKeepsServing() async throws {
    let handler = ClosureHandler { r, _ in
      if r.text == "fail" { throw HandlerError(.failedPrecondition, "sensor offline") }
      if r.text == "crash" { throw CocoaError(.fileReadCorruptFile) }
      return .bytes(r.input)
    }
    try await withClient(handler) { client in
      let error = await #expect(throws: RPCError.self) { _ = try await client.call(request(Data("fail".utf8))) }
      #expect(error?.code == .failedPrecondition)
      #expect(error?.message == "sensor offline")
      let unknown = await #expect(throws: RPCError.self) { _ = try await client.call(request(Data("crash".utf8))) }
      #expect(unknown?.code == .unknown)
      let reply = try await client.call(request(Data("still here".utf8)))
      #expect(reply.output == "still here")
    }
  }

  @Test func invalidUTF8OutputIsAnInternalStatusNotRepairedText() async throws {
    try await withClient(ClosureHandler { r, _ in .bytes(r.input) }) { client in
      let error = await #expect(throws: RPCError.self) {
        _ = try await client.call(request(Data([0xFF, 0xD8, 0xFF, 0xE0])))
      }
      #expect(error?.code == .internalError)
      #expect(error?.message.contains("not valid UTF-8") == true)
    }
  }

  @Test func everyHandlerCodeMapsToTheGRPCCodeOfTheSameName() throws {
    for code in HandlerError.Code.allCases {
      let grpc = try #require(RPCError.Code(Status.Code(rawValue: code.grpcStatusCode)!))
      #expect("\(grpc)".lowercased().replacingOccurrences(of: "_", with: "") == code.rawValue.lowercased())
      #expect(HandlerError.Code(grpcStatusCode: grpc.rawValue) == code)
    }
  }
}
