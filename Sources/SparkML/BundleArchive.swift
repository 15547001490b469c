import Foundation
import SwiftProtobuf
import ZIPFoundation

/// Why a bundle could not be used; the message names the file and what is wrong with it.
public struct BundleError: Error, Equatable, CustomStringConvertible {
  /// What is wrong, for the caller.
  public let message: String

  init(_ message: String) {
    self.message = message
  }

  public var description: String { message }
}

/// The files of an MLeap bundle (a zip), read into memory with limits, so that a bad or
/// malicious bundle is an error and never a crash or an exhausted machine: at most
/// ``maximumEntries`` entries and ``maximumBytes`` bytes once inflated (counted as they are
/// inflated, not as the archive claims), no absolute paths, no `..`, no links.
struct BundleArchive {
  static let maximumEntries = 10_000
  static let maximumBytes = 256 * 1024 * 1024

  private let files: [String: Data]

  /// Reads every file of `zip`; `maximumBytes` bounds what it may inflate to.
  init(zip: Data, maximumBytes: Int = Self.maximumBytes) throws(BundleError) {
    let archive: Archive
    do {
      archive = try Archive(data: zip, accessMode: .read)
    } catch {
      throw BundleError("the bundle is not a readable zip archive (\(error))")
    }
    var files: [String: Data] = [:]
    var total = 0
    var count = 0
    for entry in archive {
      count += 1
      guard count <= Self.maximumEntries else {
        throw BundleError("the bundle has more than \(Self.maximumEntries) entries")
      }
      let path = entry.path
      let parts = path.split(separator: "/", omittingEmptySubsequences: false)
      guard !path.hasPrefix("/"), !path.contains("\\"), !parts.contains(".."), !path.contains("\0") else {
        throw BundleError("the bundle entry \"\(path.prefix(128))\" points outside the bundle")
      }
      switch entry.type {
      case .directory: continue
      case .symlink: throw BundleError("the bundle entry \"\(path.prefix(128))\" is a link, which bundles do not have")
      case .file: break
      }
      var content = Data()
      do {
        _ = try archive.extract(entry, skipCRC32: false) { chunk in
          total += chunk.count
          guard total <= maximumBytes else { throw BundleError("") }
          content.append(chunk)
        }
      } catch let error as BundleError where error.message.isEmpty {
        throw BundleError("the bundle inflates to more than \(maximumBytes) bytes; it is not a model bundle")
      } catch {
        throw BundleError("the bundle entry \"\(path.prefix(128))\" cannot be read (\(error))")
      }
      files[path.hasPrefix("./") ? String(path.dropFirst(2)) : path] = content
    }
    self.files = files
  }

  /// The file at `path` inside the bundle.
  func data(_ path: String) throws(BundleError) -> Data {
    guard let data = files[path] else { throw BundleError("the bundle has no \(path)") }
    return data
  }

  /// The file at `path` decoded from protobuf as `type`.
  func protobuf<Message: SwiftProtobuf.Message>(_ type: Message.Type, _ path: String) throws(BundleError) -> Message {
    let data = try data(path)
    do {
      return try Message(serializedBytes: data)
    } catch {
      throw BundleError("\(path) in the bundle is not an MLeap \(Message.protoMessageName) (\(error))")
    }
  }

  /// The file at `path` decoded from JSON as `type`. (`JSONDecoder`, not `JSONSerialization`,
  /// which on Linux misreads the last bits of many doubles.)
  func json<Value: Decodable>(_ type: Value.Type, _ path: String) throws(BundleError) -> Value {
    let data = try data(path)
    do {
      return try JSONDecoder().decode(type, from: data)
    } catch {
      throw BundleError("\(path) in the bundle is not what an MLeap bundle has there (\(error))")
    }
  }
}
