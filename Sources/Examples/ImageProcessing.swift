import Foundation
import HandlerKit
import Imaging

/// The seed's `imgprocessing` (OpenCV): decodes an image (JPEG, also PNG) as `cv2.imdecode(…,
/// IMREAD_COLOR)` does, applies ``Operation`` and replies with the result as a JPEG (quality 95),
/// as `cv2.imencode(".jpg", …)` does. Binary output: call it with `CallBytes`, `Calls` or
/// `Invokes`, not `Call`.
///
/// An input that is not a decodable image is `invalidArgument`.
public struct ImageProcessing: Handler {
  /// What is done to each image: `IMG_OP`.
  public enum Operation: String, Sendable, CaseIterable {
    /// Decode and encode again: the seed's function.
    case reencode
    /// OpenCV's BGR → gray (`cvtColor(…, COLOR_BGR2GRAY)`), encoded as a gray JPEG.
    case gray
    /// Mirrored left to right (`flip(…, 1)`): a selfie camera's view.
    case mirror
    /// Softened: OpenCV's 3×3 box blur (`blur(…, (3, 3))`), say before motion detection.
    case blur
  }

  /// The operation applied to every image.
  public let operation: Operation

  /// Creates the handler for `operation`.
  public init(operation: Operation = .reencode) {
    self.operation = operation
  }

  /// Creates the handler for the operation `IMG_OP` names (`reencode` when unset); an unknown
  /// name is an error that lists the known ones.
  public init(environment: [String: String]) throws {
    let name = environment["IMG_OP", default: Operation.reencode.rawValue]
    guard let operation = Operation(rawValue: name) else {
      throw HandlerError(
        .invalidArgument,
        "IMG_OP \"\(name.prefix(64))\" is not one of \(Operation.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    self.init(operation: operation)
  }

  /// The processed image as JPEG bytes.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    do {
      // Shortcuts for a plain JPEG: the same bytes as the long way, faster.
      let shortcut: [UInt8]? = try request.input.withUnsafeBytes { bytes in
        switch operation {
        case .reencode: try ImageCodec.reencodeJPEG(bytes)  // from its YCbCr planes
        case .gray: try ImageCodec.grayJPEG(bytes)  // decoding and encoding at once
        case .mirror, .blur: nil
        }
      }
      if let shortcut { return .bytes(Data(shortcut)) }
    } catch let error as ImageError {
      throw HandlerError(.invalidArgument, error.message)
    }
    let processed: Image
    do {
      processed = try request.input.withUnsafeBytes { bytes in
        switch operation {
        case .reencode: try ImageCodec.decode(bytes)
        case .gray: try ImageCodec.decodeGray(bytes)
        case .mirror: try ImageCodec.decode(bytes).mirrored()
        case .blur: try ImageCodec.decode(bytes).boxBlurred()
        }
      }
    } catch let error as ImageError {
      throw HandlerError(.invalidArgument, error.message)
    }
    do {
      return .bytes(Data(try ImageCodec.encodeJPEG(processed)))
    } catch {
      throw HandlerError(.internalError, error.message)
    }
  }
}
