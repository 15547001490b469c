import Examples
import Foundation
import HandlerKit
import Testing

/// Spot checks without the Go oracle (which the end-to-end test runs over hundreds of inputs).
@Suite("unmarshalling")
struct UnmarshallingTests {
  func reply(_ json: String) -> String {
    Unmarshalling.unmarshal(Array(json.utf8)).0.goDescription
  }

  @Test func theSeedsExample() async throws {
    let output = try await Unmarshalling().handle(
      Request(#"{"name": "battery sensor", "capacity": 40, "time": "2019-01-21T19:07:28Z"}"#), context: Context())
    #expect(output.text == "{Name:battery sensor Capacity:40 Time:2019-01-21T19:07:28Z}")
  }

  @Test func aSyntaxErrorLeavesTheZeroStruct() {
    let (reading, error) = Unmarshalling.unmarshal(Array(#"{"name":"x"} trailing"#.utf8))
    #expect(reading.goDescription == "{Name: Capacity:0 Time:}")
    #expect(error == "invalid character 't' after top-level value")
    #expect(Unmarshalling.unmarshal([]).1 == "unexpected end of JSON input")
  }

  @Test func aTypeErrorStillFillsTheOtherFields() {
    let (reading, error) = Unmarshalling.unmarshal(Array(#"{"name":"cell","capacity":40.5,"time":"t"}"#.utf8))
    #expect(reading.goDescription == "{Name:cell Capacity:0 Time:t}")
    #expect(error == "json: cannot unmarshal number 40.5 into Go struct field SensorReading.capacity of type int")
  }

  @Test func keysMatchIgnoringASCIICaseAndTheLastDuplicateWins() {
    #expect(reply(#"{"NAME":"a","Name":"b","capacity":1,"CaPaCiTy":2}"#) == "{Name:b Capacity:2 Time:}")
    #expect(reply(#"{"name":"kept","name":null}"#) == "{Name:kept Capacity:0 Time:}")
  }

  @Test func invalidUTF8AndLoneSurrogatesBecomeReplacementCharacters() {
    let (reading, _) = Unmarshalling.unmarshal(Array(#"{"name":"a"#.utf8) + [0xE2, 0x82] + Array(#"b\ud83d\u0041"}"#.utf8))
    #expect(reading.name == "a\u{FFFD}\u{FFFD}b\u{FFFD}A")
  }

  @Test func intsFollowStrconvParseInt() {
    #expect(reply(#"{"capacity":-9223372036854775808}"#) == "{Name: Capacity:-9223372036854775808 Time:}")
    #expect(reply(#"{"capacity":9223372036854775808}"#) == "{Name: Capacity:0 Time:}")
    #expect(reply(#"{"capacity":1e2}"#) == "{Name: Capacity:0 Time:}")
  }
}
