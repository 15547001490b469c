import Foundation
import SwiftProtobuf

/// A model pipeline read from an MLeap bundle (`bundle.json`, then `root/model.json` and
/// `root/node.json`, a `root/<uid>.node/` folder per stage; `model.pb` and `node.pb` instead
/// when `bundle.json` says format `protobuf`). The stages this port runs: `pipeline` (nested
/// too) and `multi_layer_perceptron_classifier`; any other op is an error naming it.
public struct MLeapBundle: Sendable {
  /// The bundle's name (`bundle.json`).
  public let name: String
  /// The stages, in order.
  public let stages: [Stage]

  /// One transformer of the pipeline.
  public enum Stage: Sendable {
    /// A multilayer perceptron classifier, run on each row's features.
    case multilayerPerceptron(MultilayerPerceptron)
  }

  /// Reads the bundle in `zip`.
  public init(zip: Data) throws(BundleError) {
    let archive = try BundleArchive(zip: zip)
    let manifest = try archive.json(Manifest.self, "bundle.json")
    let format = manifest.format ?? "json"
    guard let encoding = Encoding(rawValue: format) else {
      throw BundleError("bundle.json says format \"\(format.prefix(32))\"; MLeap bundles are json or protobuf")
    }
    name = manifest.name ?? ""
    var stages: [Stage] = []
    try Self.readNode(at: "root", from: archive, encoding: encoding, into: &stages, depth: 0)
    guard !stages.isEmpty else { throw BundleError("the bundle's pipeline has no stages") }
    self.stages = stages
  }

  /// How the bundle's model and node files are written.
  enum Encoding: String {
    case json
    case protobuf

    var fileExtension: String { self == .json ? "json" : "pb" }
  }

  private static func readNode(
    at folder: String, from archive: BundleArchive, encoding: Encoding, into stages: inout [Stage], depth: Int
  ) throws(BundleError) {
    guard depth < 16 else { throw BundleError("the bundle nests pipelines more than 16 deep") }
    let file = "\(folder)/model.\(encoding.fileExtension)"
    let nodeFile = "\(folder)/node.\(encoding.fileExtension)"
    // The node file names the stage's columns, which a one-model port does not need; it must
    // still be there and be what a bundle has there.
    let model: ModelFile
    switch encoding {
    case .json:
      model = try archive.json(ModelFile.self, file)
      _ = try archive.json(NodeFile.self, nodeFile)
    case .protobuf:
      model = try ModelFile(try archive.protobuf(Mleap_Bundle_Model.self, file), file: file)
      _ = try archive.protobuf(Mleap_Bundle_Node.self, nodeFile)
    }
    func attribute(_ name: String) throws(BundleError) -> Attribute {
      guard let value = model.attributes?[name] else { throw BundleError("\(file) has no attribute \"\(name)\"") }
      return Attribute(value: value, name: name, file: file)
    }
    switch model.op {
    case "pipeline":
      for child in try attribute("nodes").strings() {
        guard !child.isEmpty, !child.contains("/"), !child.contains("\\"), child != ".." else {
          throw BundleError("\(file) names a stage \"\(child.prefix(64))\" that is not a folder name")
        }
        try readNode(at: "\(folder)/\(child).node", from: archive, encoding: encoding, into: &stages, depth: depth + 1)
      }
    case "multi_layer_perceptron_classifier":
      let perceptron = try MultilayerPerceptron(
        layers: try attribute("layers").integers(), weights: try attribute("weights").doubles(), source: file)
      stages.append(.multilayerPerceptron(perceptron))
    default:
      throw BundleError("\(file) has op \"\(model.op.prefix(64))\", which this port does not run")
    }
  }
}

/// `bundle.json`.
struct Manifest: Decodable {
  let name: String?
  let format: String?
}

/// A stage's `model.json` (or `model.pb`): its op and attributes.
struct ModelFile: Decodable {
  let op: String
  let attributes: [String: AttributeValue]?

  init(_ model: Mleap_Bundle_Model, file: String) throws(BundleError) {
    op = model.op
    var attributes: [String: AttributeValue] = [:]
    for (name, value) in model.attributes.list {
      attributes[name] = try AttributeValue(value, file: file, name: name)
    }
    self.attributes = attributes
  }
}

/// A stage's `node.json`: its name and the columns it reads and writes.
struct NodeFile: Decodable {
  struct Socket: Decodable {
    let port: String
    let name: String
  }
  struct Shape: Decodable {
    let inputs: [Socket]?
    let outputs: [Socket]?
  }
  let name: String?
  let shape: Shape?
}

/// One value of `attributes`: a scalar (`{"double": 1.0}`), a list (`{"long": […], "type":
/// "list"}`) or a tensor (`{"double": […], "shape": {"dimensions": [{"size": n}]}, "type":
/// "tensor"}`).
struct AttributeValue: Decodable {
  /// One value or a list of them.
  enum Values<Element: Decodable>: Decodable {
    case one(Element)
    case many([Element])

    init(from decoder: any Swift.Decoder) throws {
      let container = try decoder.singleValueContainer()
      if let many = try? container.decode([Element].self) {
        self = .many(many)
      } else {
        self = .one(try container.decode(Element.self))
      }
    }

    var list: [Element] {
      switch self {
      case .one(let value): [value]
      case .many(let values): values
      }
    }
  }
  struct Shape: Decodable {
    struct Dimension: Decodable { let size: Int }
    let dimensions: [Dimension]
  }

  let type: String?
  let string: Values<String>?
  let long: Values<Int>?
  let int: Values<Int>?
  let double: Values<Double>?
  let shape: Shape?

  /// The attribute as a protobuf `Value` holds it: a scalar, a list or a tensor (big-endian
  /// values; doubles, longs and ints are read).
  init(_ value: Mleap_Bundle_Value, file: String, name: String) throws(BundleError) {
    var (string, long, int, double): (Values<String>?, Values<Int>?, Values<Int>?, Values<Double>?) = (nil, nil, nil, nil)
    var shape: Shape? = nil
    switch value.v {
    case .s(let scalar):
      (string, long, int, double) = (.one(scalar.s), .one(Int(scalar.l)), .one(Int(scalar.i)), .one(scalar.d))
    case .l(let list):
      if !list.s.isEmpty { string = .many(list.s) }
      if !list.l.isEmpty { long = .many(list.l.map { Int($0) }) }
      if !list.i.isEmpty { int = .many(list.i.map { Int($0) }) }
      if !list.d.isEmpty { double = .many(list.d) }
      if list.s.isEmpty && list.l.isEmpty && list.i.isEmpty && list.d.isEmpty {
        (string, long, int, double) = (.many([]), .many([]), .many([]), .many([]))
      }
    case .t(let tensor):
      shape = Shape(dimensions: tensor.shape.dimensions.map { Shape.Dimension(size: Int($0.size)) })
      let bytes = [UInt8](tensor.value)
      func words(_ width: Int) throws(BundleError) -> [UInt64] {
        guard bytes.count % width == 0 else {
          throw BundleError("\(file): tensor \"\(name)\" has \(bytes.count) bytes, not a whole number of values")
        }
        return stride(from: 0, to: bytes.count, by: width).map { start in
          bytes[start..<start + width].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
      }
      switch tensor.base {
      case .double: double = .many(try words(8).map { Double(bitPattern: $0) })
      case .long: long = .many(try words(8).map { Int(Int64(bitPattern: $0)) })
      case .int: int = .many(try words(4).map { Int(Int32(truncatingIfNeeded: $0)) })
      default: break
      }
    case nil:
      break
    }
    self.type = nil
    self.string = string
    self.long = long
    self.int = int
    self.double = double
    self.shape = shape
  }

  /// Reads each field it can; one of another type is left out, so the stage that needs it
  /// reports which attribute is wrong.
  init(from decoder: any Swift.Decoder) throws {
    enum Key: String, CodingKey { case type, string, long, int, double, shape }
    let container = try decoder.container(keyedBy: Key.self)
    type = try? container.decodeIfPresent(String.self, forKey: .type)
    string = try? container.decodeIfPresent(Values<String>.self, forKey: .string)
    long = try? container.decodeIfPresent(Values<Int>.self, forKey: .long)
    int = try? container.decodeIfPresent(Values<Int>.self, forKey: .int)
    double = try? container.decodeIfPresent(Values<Double>.self, forKey: .double)
    shape = try? container.decodeIfPresent(Shape.self, forKey: .shape)
  }
}

/// An attribute read as the type a stage needs, with errors naming the file and the attribute.
struct Attribute {
  let value: AttributeValue
  let name: String
  let file: String

  func strings() throws(BundleError) -> [String] {
    guard let strings = value.string?.list else { throw wrongType("a list of strings") }
    return strings
  }

  func integers() throws(BundleError) -> [Int] {
    guard let numbers = (value.long ?? value.int)?.list else { throw wrongType("a list of integers") }
    return numbers
  }

  /// The doubles of a list or of a tensor, whose declared shape must hold exactly that many.
  func doubles() throws(BundleError) -> [Double] {
    guard let doubles = value.double?.list else { throw wrongType("doubles") }
    if let dimensions = value.shape?.dimensions {
      let sizes = dimensions.map(\.size)
      var declared = 1
      for size in sizes {
        let (product, overflow) = declared.multipliedReportingOverflow(by: size)
        guard size >= 0, !overflow else { declared = -1; break }
        declared = product
      }
      guard declared == doubles.count else {
        throw BundleError("\(file): attribute \"\(name)\" declares shape \(sizes) but holds \(doubles.count) values")
      }
    }
    return doubles
  }

  private func wrongType(_ expected: String) -> BundleError {
    BundleError("\(file): attribute \"\(name)\" is not \(expected)")
  }
}
