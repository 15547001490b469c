import Foundation
import HandlerKit
import Logging
import Testing

@testable import Watcher

@Suite("Invocation pipeline")
struct InvokerTests {
  func invoker(_ handler: any Handler, logs: LogCapture = LogCapture(), level: Logger.Level = .debug) -> Invoker {
    Invoker(handler: handler, functionName: "configured", logger: logs.logger(level: level))
  }

  @Test func buildsTheContextFromTheRequestAndTheCaller() async throws {
    let describe = ClosureHandler { request, context in
      .text("\(context.requestID)|\(context.functionName)|\(request.info.timeout)")
    }
    let named = try await invoker(describe).invoke(
      Request("x", info: Info(functionName: "from-gateway", timeout: "30s")), requestID: "req-1", method: "Call")
    #expect(named.text == "req-1|from-gateway|30s")
    let unnamed = try await invoker(describe).invoke(Request("x"), requestID: nil, method: "Call")
    let parts = try #require(unnamed.text).split(separator: "|", omittingEmptySubsequences: false)
    #expect(parts[0].count == 16 && parts[1] == "configured")
  }

  @Test(arguments: ["", String(repeating: "a", count: 129), "has space", "new\nline", "ünïcode"])
  func replacesUnreasonableRequestIDs(id: String) async throws {
    let echoID = ClosureHandler { _, context in .text(context.requestID) }
    let output = try await invoker(echoID).invoke(Request(), requestID: id, method: "Call")
    #expect(output.text != id)
    #expect(output.text?.count == 16)
  }

  @Test func mapsEveryFailureToAHandlerError() async {
    struct Plain: Error, CustomStringConvertible { var description: String { "plain failure" } }
    let cases: [(any Error, HandlerError)] = [
      (HandlerError.notFound("gone"), HandlerError(.notFound, "gone")),
      (Plain(), HandlerError(.unknown, "plain failure")),
      (CancellationError(), HandlerError(.cancelled, "the call was cancelled")),
    ]
    for (thrown, expected) in cases {
      let failing = ClosureHandler { _, _ in throw thrown }
      let error = await #expect(throws: HandlerError.self) {
        _ = try await invoker(failing).invoke(Request(), requestID: nil, method: "Call")
      }
      #expect(error == expected)
    }
  }

  @Test func textRepliesRefuseInvalidUTF8InsteadOfRepairingIt() async throws {
    let binary = ClosureHandler { _, _ in .bytes(Data([0x61, 0xFF, 0x62])) }
    let error = await #expect(throws: HandlerError.self) {
      _ = try await invoker(binary).invokeForText(Request(), requestID: nil, method: "Call")
    }
    #expect(error?.code == .internalError)
    #expect(error?.message.contains("not valid UTF-8") == true)
    let text = ClosureHandler { _, _ in .bytes(Data("ok ✓".utf8)) }
    #expect(try await invoker(text).invokeForText(Request(), requestID: nil, method: "Call").text == "ok ✓")
  }

  @Test func logsOneDebugLinePerCallWithRequestIDAndDuration() async throws {
    let logs = LogCapture()
    let pipeline = invoker(ClosureHandler { r, _ in .bytes(r.input) }, logs: logs)
    _ = try await pipeline.invoke(Request("a"), requestID: "first", method: "Call")
    _ = try? await invoker(ClosureHandler { _, _ in throw HandlerError.invalidArgument("no") }, logs: logs)
      .invoke(Request("b"), requestID: "second", method: "Call")
    let calls = logs.entries.filter { $0.message == "call" }
    #expect(calls.count == 2)
    #expect(calls.map(\.level) == [.debug, .debug])
    #expect(calls[0].metadata["request-id"] == "first" && calls[0].metadata["status"] == "ok")
    #expect(calls[1].metadata["request-id"] == "second" && calls[1].metadata["status"] == "invalidArgument")
    #expect(calls.allSatisfy { Double("\($0.metadata["duration-ms"] ?? "")") != nil })
  }

  @Test func logsNoCallLinesAboveDebug() async throws {
    let logs = LogCapture()
    _ = try await invoker(ClosureHandler { r, _ in .bytes(r.input) }, logs: logs, level: .info)
      .invoke(Request("a"), requestID: nil, method: "Call")
    #expect(logs.entries.isEmpty)
  }

  @Test func logsUnexpectedFailuresAsWarnings() async {
    let logs = LogCapture()
    _ = try? await invoker(ClosureHandler { _, _ in throw CocoaError(.fileNoSuchFile) }, logs: logs, level: .info)
      .invoke(Request(), requestID: "r9", method: "Call")
    let warning = logs.entries.first { $0.level == .warning }
    #expect(warning?.metadata["request-id"] == "r9")
  }
}
