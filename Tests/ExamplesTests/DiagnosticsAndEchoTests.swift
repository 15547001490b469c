import Examples
import Foundation
import HandlerKit
import Testing

@Suite("Echo and the diagnostic handlers")
struct DiagnosticsAndEchoTests {
  @Test func echoReturnsItsInputByteForByte() async throws {
    for input in [Data(), Data("Have a nice day\n".utf8), Data([0x00, 0xFF, 0xC3, 0x28])] {
      #expect(try await Echo().handle(Request(input: input), context: Context()).bytes == input)
    }
  }

  @Test func sleepWaitsAndRepliesWithTheTextAfterTheColon() async throws {
    let start = ContinuousClock.now
    let output = try await Sleep().handle(Request("50:done"), context: Context())
    #expect(output.text == "done")
    #expect(ContinuousClock.now - start >= .milliseconds(50))
    #expect(try await Sleep().handle(Request("0"), context: Context()).text == "slept 0ms")
  }

  @Test(arguments: ["", "abc", "-5", "600001", " 5", "5ms"])
  func sleepRefusesMalformedDurations(input: String) async {
    let error = await #expect(throws: HandlerError.self) {
      _ = try await Sleep().handle(Request(input), context: Context())
    }
    #expect(error?.code == .invalidArgument)
  }

  @Test func sleepStopsWhenCancelled() async {
    let task = Task { try await Sleep().handle(Request("60000"), context: Context()) }
    task.cancel()
    await #expect(throws: CancellationError.self) { _ = try await task.value }
  }

  @Test func failThrowsTheRequestedCodeOrAPlainError() async {
    let coded = await #expect(throws: HandlerError.self) {
      _ = try await Fail().handle(Request("notFound:no sensor 7"), context: Context())
    }
    #expect(coded == HandlerError(.notFound, "no sensor 7"))
    let plain = await #expect(throws: (any Error).self) {
      _ = try await Fail().handle(Request("boom: it broke"), context: Context())
    }
    #expect(HandlerError(converting: plain!) == HandlerError(.unknown, "boom: it broke"))
  }

  @Test func registryHasEchoAsItsDefault() throws {
    #expect(ExampleHandlers.factories[ExampleHandlers.defaultName] != nil)
    #expect(
      Set(ExampleHandlers.factories.keys)
        == ["echo", "sleep", "fail", "relay", "unmarshalling", "crawler", "sentiment-analysis", "imgprocessing", "pyspark"])
    #expect(try ExampleHandlers.factories["echo"]!() is Echo)
  }
}
