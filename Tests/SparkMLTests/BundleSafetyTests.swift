import Foundation
import SwiftProtobuf
import Testing
import ZIPFoundation

@testable import SparkML

/// Bad and malicious bundles are clear errors, never crashes.
@Suite("MLeap bundles that cannot be used")
struct BundleSafetyTests {
  static let mlp = """
    {"op": "multi_layer_perceptron_classifier", "attributes": {"layers": {"long": [2, 2], "type": "list"},
     "weights": {"double": [1, 0, 0, 1, 0.5, -0.5], "shape": {"dimensions": [{"size": 6, "name": ""}]}, "type": "tensor"}}}
    """
  static let good: [String: String] = [
    "bundle.json": #"{"uid": "u", "name": "Pipeline_u", "format": "json", "version": "0.16.0"}"#,
    "root/model.json": #"{"op": "pipeline", "attributes": {"nodes": {"string": ["m"], "type": "list"}}}"#,
    "root/node.json": #"{"name": "Pipeline_u", "shape": {"inputs": [], "outputs": []}}"#,
    "root/m.node/model.json": mlp,
    "root/m.node/node.json": #"{"name": "m", "shape": {"inputs": [{"port": "features", "name": "features"}], "outputs": []}}"#,
  ]

  /// A zip of `files` (path → text), entries in path order, deflated.
  static func zip(_ files: [String: String]) throws -> Data {
    try zip(files.mapValues { Data($0.utf8) })
  }

  /// A zip of `files` (path → bytes), entries in path order, deflated.
  static func zip(_ files: [String: Data]) throws -> Data {
    let archive = try Archive(accessMode: .create)
    for (path, data) in files.sorted(by: { $0.key < $1.key }) {
      try archive.addEntry(with: path, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate) {
        position, size in data.subdata(in: Int(position)..<Int(position) + size)
      }
    }
    return archive.data!
  }

  func message(_ files: [String: String]) throws -> String {
    let zip = try Self.zip(files)
    do {
      _ = try MLeapBundle(zip: zip)
      return "loaded"
    } catch {
      return error.message
    }
  }

  @Test func aGoodBundleLoads() throws {
    let bundle = try MLeapBundle(zip: try Self.zip(Self.good))
    #expect(bundle.name == "Pipeline_u" && bundle.stages.count == 1)
  }

  @Test func missingFilesAreNamed() throws {
    for missing in ["bundle.json", "root/model.json", "root/m.node/model.json", "root/m.node/node.json"] {
      var files = Self.good
      files[missing] = nil
      #expect(try message(files).contains("has no \(missing)"), "\(missing)")
    }
  }

  @Test func wrongShapesAndUnknownOpsAreNamed() throws {
    var files = Self.good
    files["root/m.node/model.json"] = Self.mlp.replacingOccurrences(of: "[2, 2]", with: "[2, 3]")
    #expect(try message(files).contains("need 9 weights, the bundle has 6"))
    files["root/m.node/model.json"] = Self.mlp.replacingOccurrences(of: #""size": 6"#, with: #""size": 5"#)
    #expect(try message(files).contains("declares shape [5] but holds 6 values"))
    files["root/m.node/model.json"] = Self.mlp.replacingOccurrences(of: "multi_layer_perceptron_classifier", with: "one_hot_encoder")
    #expect(try message(files).contains("op \"one_hot_encoder\", which this port does not run"))
    files["root/m.node/model.json"] = Self.mlp.replacingOccurrences(of: #""long""#, with: #""string""#)
    #expect(try message(files).contains("attribute \"layers\" is not a list of integers"))
    files = Self.good
    files["bundle.json"] = #"{"name": "p", "format": "avro"}"#
    #expect(try message(files).contains("MLeap bundles are json or protobuf"))
    files["bundle.json"] = #"{"name": "p", "format": "protobuf"}"#
    #expect(try message(files).contains("has no root/model.pb"))
    files = Self.good
    files["root/model.json"] = #"{"op": "pipeline", "attributes": {"nodes": {"string": ["../../etc"], "type": "list"}}}"#
    #expect(try message(files).contains("not a folder name"))
  }

  @Test func protobufBundlesAreReadAndTheirFaultsNamed() throws {
    var weights = Mleap_Bundle_Value()
    weights.t.base = .double
    weights.t.shape.dimensions = [Mleap_Bundle_TensorDimension.with { $0.size = 6 }]
    weights.t.value = Data([1.0, 0, 0, 1, 0.5, -0.5].flatMap { value in
      withUnsafeBytes(of: value.bitPattern.bigEndian) { Array($0) }
    })
    var layers = Mleap_Bundle_Value()
    layers.l.l = [2, 2]
    var perceptron = Mleap_Bundle_Model()
    perceptron.op = "multi_layer_perceptron_classifier"
    perceptron.attributes.list = ["layers": layers, "weights": weights]
    var pipeline = Mleap_Bundle_Model()
    pipeline.op = "pipeline"
    pipeline.attributes.list["nodes"] = .with { $0.l.s = ["m"] }
    let node = Mleap_Bundle_Node.with { $0.name = "n" }
    func files(_ model: Mleap_Bundle_Model) throws -> [String: Data] {
      [
        "bundle.json": Data(#"{"name": "p", "format": "protobuf"}"#.utf8),
        "root/model.pb": try pipeline.serializedBytes(), "root/node.pb": try node.serializedBytes(),
        "root/m.node/model.pb": try model.serializedBytes(), "root/m.node/node.pb": try node.serializedBytes(),
      ]
    }
    let bundle = try MLeapBundle(zip: try Self.zip(try files(perceptron)))
    guard case .multilayerPerceptron(let loaded) = try #require(bundle.stages.first) else { return }
    #expect(loaded.layers == [2, 2] && loaded.weights == [1.0, 0, 0, 1, 0.5, -0.5])

    var cut = perceptron
    cut.attributes.list["weights"]!.t.value.removeLast()
    let error = #expect(throws: BundleError.self) { try MLeapBundle(zip: try Self.zip(try files(cut))) }
    #expect(error?.message.contains("not a whole number of values") == true)
    var garbage = try files(perceptron)
    garbage["root/m.node/model.pb"] = Data([0xFF, 0xFF, 0xFF])
    let unreadable = #expect(throws: BundleError.self) { try MLeapBundle(zip: try Self.zip(garbage)) }
    #expect(unreadable?.message.contains("is not an MLeap mleap.bundle.Model") == true)
  }

  @Test func entriesOutsideTheBundleAreRefused() throws {
    for path in ["../evil.json", "/etc/passwd", "root/../../evil", "root\\..\\evil"] {
      var files = Self.good
      files[path] = "{}"
      #expect(try message(files).contains("points outside the bundle"), "\(path)")
    }
  }

  @Test func aZipBombIsRefusedAsItInflates() throws {
    // 8 MiB of zeros deflate to about 8 KB; the limit here is 1 MiB (256 MiB in use).
    let archive = try Archive(accessMode: .create)
    let zeros = Data(count: 8 << 20)
    try archive.addEntry(with: "bundle.json", type: .file, uncompressedSize: Int64(zeros.count), compressionMethod: .deflate) {
      position, chunk in zeros.subdata(in: Int(position)..<Int(position) + chunk)
    }
    let zip = archive.data!
    #expect(zip.count < 64 << 10)
    let error = #expect(throws: BundleError.self) { try BundleArchive(zip: zip, maximumBytes: 1 << 20) }
    #expect(error?.message.contains("inflates to more than 1048576 bytes") == true)
  }

  @Test func whatIsNoZipIsRefused() {
    for bytes in [Data(), Data("not a zip".utf8), Data([0x50, 0x4B, 0x03, 0x04, 1, 2, 3])] {
      let error = #expect(throws: BundleError.self) { try MLeapBundle(zip: bytes) }
      #expect(error?.message.contains("not a readable zip") == true)
    }
  }
}
