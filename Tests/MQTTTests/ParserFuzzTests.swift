import NIOCore
import Testing

@testable import MQTT

/// The parser on bytes nobody wrote on purpose: it must return or throw, never crash, hang or
/// hold more than one packet's bytes, and whatever it accepts must re-encode to a packet that
/// parses the same.
@Suite("MQTT parser fuzzing")
struct ParserFuzzTests {
  /// A small deterministic generator (SplitMix64), so a failure can be replayed from its seed.
  struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  /// Parses `bytes` in random chunks; returns the packets read before the first error.
  static func parseAll(_ bytes: [UInt8], maximumPacketSize: Int, using random: inout SplitMix) -> [MQTTInbound] {
    var parser = MQTTPacketParser(maximumPacketSize: maximumPacketSize)
    var pending = ByteBuffer()
    var results: [MQTTInbound] = []
    var offset = 0
    while offset < bytes.count {
      let count = min(Int.random(in: 1...64, using: &random), bytes.count - offset)
      pending.writeBytes(bytes[offset..<offset + count])
      offset += count
      do {
        while let inbound = try parser.next(from: &pending) { results.append(inbound) }
      } catch {
        #expect(!error.message.isEmpty)
        return results
      }
    }
    return results
  }

  static func checkRoundTrip(_ results: [MQTTInbound]) {
    for case .packet(let packet) in results {
      guard var encoded = try? packet.encoded() else {
        Issue.record("\(packet) was parsed but cannot be encoded")
        continue
      }
      var parser = MQTTPacketParser()
      #expect((try? parser.next(from: &encoded)) == .packet(packet))
    }
  }

  @Test func randomBytesNeverCrashTheParser() {
    var random = SplitMix(state: 0x5EED_0001)
    var accepted = 0
    for _ in 0..<100_000 {
      let length = Int.random(in: 0...48, using: &random)
      var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
      // Bias the first byte towards real packet types so the decoding paths are reached.
      if !bytes.isEmpty, Bool.random(using: &random) {
        let type = UInt8.random(in: 1...14, using: &random)
        let flags: UInt8 = type == 3 ? bytes[0] & 0x0F : [6, 8, 10].contains(type) ? 0x02 : 0
        bytes[0] = type << 4 | flags
        if bytes.count > 1 { bytes[1] = UInt8(min(bytes.count - 2, 127)) }
      }
      let results = Self.parseAll(bytes, maximumPacketSize: 32, using: &random)
      accepted += results.count
      Self.checkRoundTrip(results)
    }
    #expect(accepted > 200, "the fuzzer reaches packets the parser accepts")
  }

  @Test func mutatedValidPacketsNeverCrashTheParser() throws {
    var random = SplitMix(state: 0x5EED_0002)
    let valid = try PacketCodecTests.vectors.map { Array(try $0.packet.encoded().readableBytesView) }
    var refused = 0
    for _ in 0..<30_000 {
      var bytes = valid.randomElement(using: &random)!
      for _ in 0..<Int.random(in: 1...3, using: &random) {
        switch Int.random(in: 0..<3, using: &random) {
        case 0: bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
        case 1: if bytes.count > 1 { bytes.remove(at: Int.random(in: 1..<bytes.count, using: &random)) }
        default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...bytes.count, using: &random))
        }
      }
      bytes += valid.randomElement(using: &random)!
      let results = Self.parseAll(bytes, maximumPacketSize: 16, using: &random)
      if results.count < 2 { refused += 1 }
      Self.checkRoundTrip(results)
    }
    #expect(refused > 1000, "mutations reach the parser's checks")
  }
}
