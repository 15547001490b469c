import Foundation
import FxWatcherProto
import GRPCCore
import GRPCInProcessTransport
import HandlerKit
import Logging
import Testing

@testable import Watcher

/// The service over grpc-swift's in-process transport, with the generated client.
@Suite("pb.FxWatcher service")
struct GRPCServiceTests {
  func withClient(
    _ handler: any Handler,
    _ body: @Sendable (Pb_FxWatcher.Client<InProcessTransport.Client>) async throws -> Void
  ) async throws {
    let service = FxWatcherGRPCService(
      invoker: Invoker(handler: handler, functionName: "fn", logger: Logger.quiet)
    )
    let transport = InProcessTransport()
    try await withGRPCServer(transport: transport.server, services: [service]) { _ in
      try await withGRPCClient(transport: transport.client) { client in
        try await body(Pb_FxWatcher.Client(wrapping: client))
      }
    }
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

  @Test func everyHandlerCodeMapsToTheGRPCCodeOfTheSameName() {
    for code in HandlerError.Code.allCases {
      let grpc = RPCError.Code(code)
      #expect("\(grpc)".lowercased().replacingOccurrences(of: "_", with: "") == code.rawValue.lowercased())
    }
  }
}
