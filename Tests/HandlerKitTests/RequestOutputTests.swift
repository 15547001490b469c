import Foundation
import HandlerKit
import Testing

@Suite("Request and Output")
struct RequestOutputTests {
  @Test func textIsDecodedOnlyFromValidUTF8() {
    #expect(Request("héllo ✓").text == "héllo ✓")
    #expect(Request(input: Data([0x68, 0xFF, 0x69])).text == nil)
    #expect(Request(input: Data()).text == "")
  }

  @Test func requireTextRefusesInvalidUTF8WithInvalidArgument() throws {
    #expect(try Request("ok").requireText() == "ok")
    let error = #expect(throws: HandlerError.self) { try Request(input: Data([0xC3])).requireText() }
    #expect(error?.code == .invalidArgument)
    #expect(error?.message.contains("1 bytes") == true)
  }

  struct Reading: Codable, Equatable {
    var name: String
    var capacity: Int
  }

  @Test func decodeReadsJSONAndReportsMalformedInputAsInvalidArgument() throws {
    let reading: Reading = try Request(#"{"name":"battery","capacity":40}"#).decode()
    #expect(reading == Reading(name: "battery", capacity: 40))
    let error = #expect(throws: HandlerError.self) { try Request("{nope").decode(Reading.self) }
    #expect(error?.code == .invalidArgument)
    #expect(error?.message.contains("Reading") == true)
  }

  @Test func outputKeepsTextAndBytesAsGiven() {
    let text: Output = "plain"
    #expect(text.text == "plain")
    #expect(text.bytes == Data("plain".utf8))
    let binary = Output(bytes: [0xFF, 0xD8, 0xFF])
    #expect(binary.text == nil)
    #expect(binary.bytes == Data([0xFF, 0xD8, 0xFF]))
    #expect(Output.bytes(Data("ü".utf8)).text == "ü")
  }

  @Test func outputChecksUTF8InPlaceAsStringDoes() {
    #expect(Output("any text ✓").isValidUTF8)
    let samples: [[UInt8]] = [
      Array("héllo ✓ 😀".utf8), [], [0x61, 0xFF], [0xE2, 0x9C], [0xC0, 0x80], [0xED, 0xA0, 0x80],
      [0xF4, 0x90, 0x80, 0x80], Array(repeating: 0x61, count: 70_000) + [0x80],
    ]
    for bytes in samples {
      let output = Output(bytes: bytes)
      #expect(output.isValidUTF8 == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes.prefix(8))")
      #expect(output.withUnsafeBytes { Array($0) } == bytes)
    }
    #expect(Output("é").withUnsafeBytes { Array($0) } == [0xC3, 0xA9])
  }

  @Test func infoDefaultsToEmptyFieldsAsOpenFxLeavesThem() {
    let info = Info()
    #expect(info.functionName.isEmpty && info.timeout.isEmpty && info.runtime.isEmpty)
    #expect(info.limits == Resources())
    #expect(info.trigger == Trigger())
  }
}
