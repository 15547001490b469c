import Foundation
import HandlerKit
import Logging
import Testing

@Suite("Handlers and adapters")
struct HandlerTests {
  @Test func closureHandlerSeesRequestAndContext() async throws {
    let handler = ClosureHandler { request, context in
      .text("\(context.functionName):\(request.text ?? "?"):\(request.info.trigger.name)")
    }
    let output = try await handler.handle(
      Request("hi", info: Info(trigger: Trigger(name: "grpc"))),
      context: Context(functionName: "greeter")
    )
    #expect(output.text == "greeter:hi:grpc")
  }

  @Test func textClosureRefusesBinaryInput() async throws {
    let upper = ClosureHandler.text { text, _ in text.uppercased() }
    #expect(try await upper.handle(Request("abc"), context: Context()).text == "ABC")
    let error = await #expect(throws: HandlerError.self) {
      _ = try await upper.handle(Request(input: Data([0xFE])), context: Context())
    }
    #expect(error?.code == .invalidArgument)
  }

  struct Shout: TextHandler {
    func handle(_ text: String, context: Context) async throws -> String { text.uppercased() + "!" }
  }

  @Test func textHandlerAdapterDecodesAndEncodesUTF8() async throws {
    #expect(try await Shout().handle(Request("hey"), context: Context()).text == "HEY!")
    await #expect(throws: HandlerError.self) {
      _ = try await Shout().handle(Request(input: Data([0x80])), context: Context())
    }
  }

  struct Sum: Codable, Sendable { var values: [Int] }
  struct Total: Codable, Equatable { var total: Int }

  @Test func codableClosureHandlerRoundTripsJSON() async throws {
    let adder = CodableClosureHandler { (input: Sum, _: Context) in Total(total: input.values.reduce(0, +)) }
    let output = try await adder.handle(Request(#"{"values":[1,2,39]}"#), context: Context())
    #expect(try JSONDecoder().decode(Total.self, from: output.bytes) == Total(total: 42))
    let error = await #expect(throws: HandlerError.self) {
      _ = try await adder.handle(Request(#"{"values":"many"}"#), context: Context())
    }
    #expect(error?.code == .invalidArgument)
  }

  @Test func contextCarriesRequestIDInItsLogger() {
    let context = Context(requestID: "req-7", functionName: "f")
    #expect(context.logger[metadataKey: "request-id"] == "req-7")
    #expect(context.deadline == nil && context.remainingTime == nil)
  }

  @Test func contextReportsRemainingTimeUntilItsDeadline() throws {
    let context = Context(deadline: .now + .seconds(5))
    let remaining = try #require(context.remainingTime)
    #expect(remaining > .seconds(4) && remaining <= .seconds(5))
  }

  @Test func generatedRequestIDsAreSixteenHexDigitsAndDiffer() {
    let ids = (0..<100).map { _ in Context.makeRequestID() }
    #expect(ids.allSatisfy { $0.count == 16 && $0.allSatisfy(\.isHexDigit) })
    #expect(Set(ids).count == 100)
  }
}

@Suite("HandlerError")
struct HandlerErrorTests {
  struct Missing: HandlerErrorConvertible {
    var handlerError: HandlerError { .notFound("no such sensor") }
  }

  struct Plain: Error, CustomStringConvertible {
    var description: String { "disk on fire" }
  }

  @Test func convertingKeepsChosenStatusesAndMapsTheRestToUnknown() {
    #expect(HandlerError(converting: HandlerError.unavailable("later")) == HandlerError(.unavailable, "later"))
    #expect(HandlerError(converting: Missing()) == HandlerError(.notFound, "no such sensor"))
    #expect(HandlerError(converting: CancellationError()).code == .cancelled)
    #expect(HandlerError(converting: Plain()) == HandlerError(.unknown, "disk on fire"))
  }

  @Test func descriptionNamesCodeAndMessage() {
    #expect(HandlerError.invalidArgument("bad").description == "invalidArgument: bad")
  }
}

@Suite("Streaming handlers")
struct StreamingHandlerTests {
  struct Frames: StreamingHandler {
    let parts: [Output]
    func handle(_ request: Request, context: Context, writer: OutputWriter) async throws {
      for part in parts { try await writer.write(part) }
    }
  }

  @Test func aSingleReplyJoinsTextAsTextAndAnythingElseAsBytes() async throws {
    let text = try await Frames(parts: ["a", "b", "c"]).handle(Request(), context: Context())
    #expect(text == Output("abc"))
    let mixed = try await Frames(parts: ["a", .bytes(Data([0xFF]))]).handle(Request(), context: Context())
    #expect(mixed.bytes == Data([0x61, 0xFF]) && mixed.text == nil)
    #expect(try await Frames(parts: []).handle(Request(), context: Context()).text == "")
  }

  @Test func byteCountCountsUTF8() {
    #expect(Output("héllo").byteCount == 6)
    #expect(Output(bytes: Data(count: 7)).byteCount == 7)
  }
}
