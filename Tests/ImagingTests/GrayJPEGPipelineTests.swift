import Testing

@testable import Imaging

/// Serialized: the pipeline takes one frame at a time and leaves the others to the long way, and
/// these tests are the only users of it in the test process.
@Suite("Gray JPEG pipeline", .serialized)
struct GrayJPEGPipelineTests {
  /// A `width` × `height` BGR picture with detail everywhere (so every block has coefficients).
  static func picture(width: Int, height: Int) -> Image {
    var pixels: [UInt8] = []
    pixels.reserveCapacity(width * height * 3)
    for y in 0..<height {
      for x in 0..<width {
        pixels += [UInt8((x * 7 + y * 3) % 256), UInt8((x * y + 40) % 256), UInt8((x * 5 + y * 11 + 13) % 256)]
      }
    }
    return Image(width: width, height: height, channels: 3, pixels: pixels)
  }

  /// What the gray operation makes the long way: decode, gray, encode.
  func longWay(_ jpeg: [UInt8]) throws -> [UInt8] {
    try ImageCodec.encodeJPEG(jpeg.withUnsafeBytes { try ImageCodec.decodeGray($0) })
  }

  func pipeline(_ jpeg: [UInt8]) throws -> [UInt8]? {
    try jpeg.withUnsafeBytes { try ImageCodec.grayJPEG($0) }
  }

  @Test(arguments: [(1, 1), (7, 5), (24, 16), (9, 300), (641, 479), (640, 480)])
  func givesTheLongWaysBytes(size: (width: Int, height: Int)) throws {
    let colour = Self.picture(width: size.width, height: size.height)
    for jpeg in [try ImageCodec.encodeJPEG(colour), try ImageCodec.encodeJPEG(colour.grayscale())] {
      let fast = try #require(try pipeline(jpeg))
      #expect(fast == (try longWay(jpeg)), "\(size)")
    }
  }

  @Test func leavesToTheLongWayWhatItDoesNotDo() throws {
    let colour = try ImageCodec.encodeJPEG(Self.picture(width: 16, height: 16))
    // An EXIF orientation to apply: APP1 "Exif" with orientation 6 right after SOI.
    let exif: [UInt8] =
      [0xFF, 0xE1, 0x00, 0x22] + Array("Exif".utf8) + [0, 0] + [0x4D, 0x4D, 0x00, 0x2A, 0, 0, 0, 8]
      + [0, 1] + [0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0, 6, 0, 0] + [0, 0, 0, 0]
    #expect(try pipeline(Array(colour[..<2]) + exif + Array(colour[2...])) == nil)
    // Not a JPEG.
    #expect(try pipeline(Array("not a picture".utf8)) == nil)
  }

  @Test func recoverableDamageDecodesAsTheLongWayDoes() throws {
    let jpeg = try ImageCodec.encodeJPEG(Self.picture(width: 320, height: 240))
    // Cut in the middle of the scan: libjpeg warns and fills the rest.
    let cut = Array(jpeg[..<(jpeg.count * 2 / 3)])
    #expect(try pipeline(cut) == (try longWay(cut)))
  }

  @Test func aBrokenJPEGIsAnErrorAndTheNextFrameIsServed() throws {
    let jpeg = try ImageCodec.encodeJPEG(Self.picture(width: 64, height: 48))
    // A second frame header after the scan: libjpeg stops with an error once the rows are out.
    let twoFrames = Array(jpeg.dropLast(2)) + [0xFF, 0xC0, 0x00, 0x0B, 8, 0, 48, 0, 64, 1, 1, 0x11, 0] + [0xFF, 0xD9]
    #expect(throws: ImageError.self) { try longWay(twoFrames) }
    let error = #expect(throws: ImageError.self) { try pipeline(twoFrames) }
    #expect(error?.message.contains("could not be decoded") == true, "\(error?.message ?? "")")
    // Broken in the header.
    #expect(throws: ImageError.self) { try pipeline(Array(jpeg[..<40])) }
    #expect(try pipeline(jpeg) == (try longWay(jpeg)))
  }

  @Test func anImageOverTheLimitIsRefusedFromItsHeaderAsTheLongWayRefusesIt() throws {
    var jpeg = try ImageCodec.encodeJPEG(Self.picture(width: 16, height: 16))
    // SOF0's height and width (after the marker, length and precision) say 20000×20000.
    let sof = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
    jpeg.replaceSubrange((sof + 5)..<(sof + 9), with: [0x4E, 0x20, 0x4E, 0x20])
    let long = #expect(throws: ImageError.self) { try longWay(jpeg) }
    let fast = #expect(throws: ImageError.self) { try pipeline(jpeg) }
    #expect(fast?.message.contains("20000×20000, larger than 100000000 pixels") == true, "\(fast?.message ?? "")")
    #expect(fast?.message == long?.message)
  }

  @Test func framesAtOnceEachGetTheirOwnBytes() async throws {
    let jpegs = try (0..<4).map { try ImageCodec.encodeJPEG(Self.picture(width: 96 + 8 * $0, height: 64)) }
    let expected = try jpegs.map { try longWay($0) }
    let pipelined = try await withThrowingTaskGroup(of: Int.self) { group in
      for task in 0..<8 {
        group.addTask {
          var used = 0
          for round in 0..<25 {
            let index = (task + round) % jpegs.count
            // A frame that finds the second thread busy is left to the long way: nil.
            if let bytes = try pipeline(jpegs[index]) {
              #expect(bytes == expected[index])
              used += 1
            }
          }
          return used
        }
      }
      return try await group.reduce(0, +)
    }
    #expect(pipelined > 0)
  }
}
