import Examples
import Foundation
import HandlerKit
import Imaging
import Testing

@Suite("imgprocessing")
struct ImageProcessingTests {
  static let frame = Image(width: 8, height: 8, channels: 3, pixels: (0..<192).map { UInt8($0) })

  @Test func imgOpChoosesTheOperationAndRefusesUnknownOnes() throws {
    #expect(try ImageProcessing(environment: [:]).operation == .reencode)
    #expect(try ImageProcessing(environment: ["IMG_OP": "gray"]).operation == .gray)
    let error = #expect(throws: HandlerError.self) { try ImageProcessing(environment: ["IMG_OP": "sharpen"]) }
    #expect(error?.message.contains("reencode, gray, mirror, blur") == true)
  }

  @Test func repliesWithAJPEGOfTheProcessedImage() async throws {
    let input = Data(try ImageCodec.encodeJPEG(Self.frame))
    for operation in ImageProcessing.Operation.allCases {
      let output = try await ImageProcessing(operation: operation).handle(Request(input: input), context: Context())
      let image = try output.bytes.withUnsafeBytes { try ImageCodec.decode($0) }
      #expect(output.bytes.prefix(3) == Data([0xFF, 0xD8, 0xFF]))
      #expect(image.width == 8 && image.height == 8)
    }
  }

  @Test func inputThatIsNoImageIsInvalidArgument() async {
    for input in [Data(), Data("a caption, not a frame".utf8), Data([0xFF, 0xD8, 0xFF, 0xDB])] {
      let error = await #expect(throws: HandlerError.self) {
        _ = try await ImageProcessing().handle(Request(input: input), context: Context())
      }
      #expect(error?.code == .invalidArgument)
    }
  }
}
