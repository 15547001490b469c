import Testing

@testable import Imaging

@Suite("Image operations")
struct ImageOperationTests {
  /// A 3×2 BGR image whose pixel (x, y) is B = 10x + y, G = B + 100, R = B + 200.
  static let sample: Image = {
    var pixels: [UInt8] = []
    for y in 0..<2 {
      for x in 0..<3 {
        let blue = UInt8(10 * x + y)
        pixels += [blue, blue + 100, blue + 200]
      }
    }
    return Image(width: 3, height: 2, channels: 3, pixels: pixels)
  }()

  func blue(_ image: Image, _ x: Int, _ y: Int) -> UInt8 { image.pixels[(y * image.width + x) * image.channels] }

  @Test func grayIsOpenCVsFifteenBitFormula() {
    let colours: [(b: UInt8, g: UInt8, r: UInt8, gray: UInt8)] = [
      (0, 0, 0, 0), (255, 255, 255, 255), (255, 0, 0, 29), (0, 255, 0, 150), (0, 0, 255, 76),
      // (B 3735 + G 19235 + R 9798 + 16384) >> 15 = (373500 + 1923500 + 979800 + 16384) >> 15 = 100
      (100, 100, 100, 100), (1, 2, 3, 2),
    ]
    for colour in colours {
      let image = Image(width: 1, height: 1, channels: 3, pixels: [colour.b, colour.g, colour.r])
      #expect(image.grayscale().pixels == [colour.gray], "\(colour)")
      #expect(image.grayscale().channels == 1)
    }
  }

  @Test func orientationsTurnTheImageAsACameraMeantIt() {
    let image = Self.sample
    #expect(image.applyingEXIFOrientation(1) == image)
    let mirrored = image.applyingEXIFOrientation(2)
    #expect(blue(mirrored, 0, 0) == 20 && blue(mirrored, 2, 1) == 1)
    let upsideDown = image.applyingEXIFOrientation(3)
    #expect(blue(upsideDown, 0, 0) == 21 && blue(upsideDown, 2, 1) == 0)
    // 6: rotate 90° clockwise: the bottom-left pixel comes to the top-left.
    let rotated = image.applyingEXIFOrientation(6)
    #expect(rotated.width == 2 && rotated.height == 3)
    #expect(blue(rotated, 0, 0) == 1 && blue(rotated, 1, 0) == 0 && blue(rotated, 0, 2) == 21)
    // 8: rotate 90° counter-clockwise: the top-right pixel comes to the top-left.
    let back = image.applyingEXIFOrientation(8)
    #expect(blue(back, 0, 0) == 20 && blue(back, 1, 2) == 1)
    #expect(image.applyingEXIFOrientation(6).applyingEXIFOrientation(8) == image)
    #expect(image.applyingEXIFOrientation(9) == image)
  }
}

@Suite("EXIF orientation")
struct EXIFOrientationTests {
  /// A JPEG start with one APP1 Exif segment holding IFD0 with the orientation tag.
  func jpeg(orientation: UInt16, bigEndian: Bool, truncate: Int = 0) -> [UInt8] {
    func u16(_ v: UInt16) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
    func u32(_ v: UInt32) -> [UInt8] { bigEndian ? u16(UInt16(v >> 16)) + u16(UInt16(v & 0xFFFF)) : u16(UInt16(v & 0xFFFF)) + u16(UInt16(v >> 16)) }
    let tiff: [UInt8] = (bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]) + u16(42) + u32(8) + u16(1)
      + u16(0x0112) + u16(3) + u32(1) + u16(orientation) + [0, 0] + u32(0)
    let payload = Array("Exif".utf8) + [0, 0] + tiff
    let segment = [0xFF, 0xE1] + [UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)] + payload
    let bytes = [0xFF, 0xD8] + segment + [0xFF, 0xDA, 0, 2, 0xFF, 0xD9]
    return Array(bytes.dropLast(truncate))
  }

  func read(_ bytes: [UInt8]) -> Int { bytes.withUnsafeBytes { EXIFOrientation.read(jpeg: $0) } }

  @Test func readsBothByteOrders() {
    for orientation in UInt16(1)...8 {
      #expect(read(jpeg(orientation: orientation, bigEndian: true)) == Int(orientation))
      #expect(read(jpeg(orientation: orientation, bigEndian: false)) == Int(orientation))
    }
  }

  @Test func absentOrMalformedIsAsStored() {
    #expect(read([0xFF, 0xD8, 0xFF, 0xDA, 0, 2]) == 1)
    #expect(read(Array(jpeg(orientation: 6, bigEndian: true).prefix(20))) == 1)
    var badOrder = jpeg(orientation: 6, bigEndian: true)
    badOrder[12] = 0x41
    #expect(read(badOrder) == 1)
    #expect(read([0x89, 0x50, 0x4E, 0x47]) == 1)
  }
}

@Suite("Image codec")
struct ImageCodecTests {
  func decode(_ bytes: [UInt8]) throws -> Image {
    try bytes.withUnsafeBytes { try ImageCodec.decode($0) }
  }

  @Test func encodesAndDecodesAFlatColourClosely() throws {
    let flat = Image(width: 16, height: 8, channels: 3, pixels: Array(repeating: [30, 120, 220], count: 128).flatMap { $0 })
    let jpeg = try ImageCodec.encodeJPEG(flat)
    #expect(jpeg.prefix(3) == [0xFF, 0xD8, 0xFF])
    let back = try decode(jpeg)
    #expect(back.width == 16 && back.height == 8 && back.channels == 3)
    #expect(zip(back.pixels, flat.pixels).allSatisfy { abs(Int($0) - Int($1)) <= 2 })
    let gray = try ImageCodec.encodeJPEG(flat.grayscale())
    #expect(try decode(gray).pixels.count == 16 * 8 * 3)
  }

  @Test func theShortcutsGiveWhatTheLongWayGives() throws {
    var pixels: [UInt8] = []
    for index in 0..<(24 * 16) { pixels += [UInt8(index % 251), UInt8(index * 7 % 256), UInt8(255 - index % 200)] }
    let picture = Image(width: 24, height: 16, channels: 3, pixels: pixels)
    let colour = try ImageCodec.encodeJPEG(picture)
    let gray = try ImageCodec.encodeJPEG(picture.grayscale())
    // Gray decoding through BGRX words is the BGR decoding's gray, bit for bit.
    #expect(try colour.withUnsafeBytes { try ImageCodec.decodeGray($0) } == (try decode(colour)).grayscale())
    #expect(try gray.withUnsafeBytes { try ImageCodec.decodeGray($0) } == (try decode(gray)).grayscale())
    // Re-encoding from YCbCr planes: only for a 4:2:0 colour JPEG, and the same picture.
    let reencoded = try #require(try colour.withUnsafeBytes { try ImageCodec.reencodeJPEG($0) })
    let (before, after) = (try decode(colour), try decode(reencoded))
    #expect(zip(before.pixels, after.pixels).allSatisfy { abs(Int($0) - Int($1)) <= 8 })
    #expect(try gray.withUnsafeBytes { try ImageCodec.reencodeJPEG($0) } == nil)
  }

  @Test func refusesWhatIsNoImageWithTheReason() {
    let cases: [([UInt8], String)] = [
      ([], "empty"),
      (Array("hello".utf8), "neither a JPEG nor a PNG"),
      ([0xFF, 0xD8, 0xFF, 0xE0, 0x00], "JPEG"),
      ([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13], "PNG"),
    ]
    for (bytes, reason) in cases {
      let error = #expect(throws: ImageError.self) { try decode(bytes) }
      #expect(error?.message.contains(reason) == true, "\(bytes.prefix(8)): \(error?.message ?? "")")
    }
  }
}
