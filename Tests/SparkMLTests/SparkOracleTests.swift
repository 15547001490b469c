import Foundation
import Testing

@testable import SparkML

/// The port against pyspark's own results, written by Tests/Oracles/pyspark/regenerate.py
/// (Spark 4.x: `SPARK_SPLIT=3`), and against the seed's reply (Spark 2.4).
@Suite("Spark split, MLP and accuracy against pyspark")
struct SparkOracleTests {
  static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  struct Golden: Decodable {
    struct Case: Decodable {
      let name: String
      let data: String
      let bundle: String
      let train_size: Int
      let test: [Row]
      let raw_prediction: [[Double]]
      let probability: [[Double]]
      let prediction: [Double]
      let reply: String
    }
    /// `[label, [features…]]`
    struct Row: Decodable {
      let label: Double
      let features: [Double]
      init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        label = try container.decode(Double.self)
        features = try container.decode([Double].self)
      }
    }
    let cases: [Case]
  }

  static func file(_ path: String) throws -> Data {
    try Data(contentsOf: repository.appendingPathComponent(path))
  }

  static let golden: Golden = try! JSONDecoder().decode(Golden.self, from: file("Tests/Oracles/pyspark/golden.json"))

  @Test(arguments: [0, 1]) func splitPredictionsAndAccuracyEqualSparks(index: Int) throws {
    let expected = Self.golden.cases[index]
    let data = try LibSVM.parse(String(decoding: try Self.file(expected.data), as: UTF8.self))
    let splits = data.randomSplit([0.6, 0.4], seed: 1234, version: .spark3)
    #expect(splits[0].count == expected.train_size, "\(expected.name)")
    #expect(splits[1].map(\.label) == expected.test.map(\.label), "\(expected.name): the test split's rows and order")
    #expect(splits[1].map(\.dense) == expected.test.map(\.features), "\(expected.name)")

    let bundle = try MLeapBundle(zip: try Self.file(expected.bundle))
    guard case .multilayerPerceptron(let perceptron) = try #require(bundle.stages.first) else { return }
    for (row, position) in zip(splits[1], splits[1].indices) {
      #expect(perceptron.rawPrediction(row.dense) == expected.raw_prediction[position], "\(expected.name) row \(position)")
      let probability = perceptron.probability(row.dense)
      #expect(zip(probability, expected.probability[position]).allSatisfy { abs($0 - $1) <= 1e-15 * max(1, abs($1)) })
      #expect(perceptron.prediction(row.dense) == expected.prediction[position])
    }
    let accuracy = try SparkAccuracy.testSetAccuracy(data: data, bundle: bundle, version: .spark3)
    #expect("Test set accuracy = \(PythonFloat.string(accuracy))" == expected.reply)
  }

  @Test func theSeedsDataAndBundleGiveTheSeedsReplyWithSpark24sSplit() throws {
    let data = try LibSVM.parse(String(decoding: try Self.file("Sources/Examples/Spark/sample_multiclass_classification_data.txt"), as: UTF8.self))
    #expect(data.count == 150 && data.allSatisfy { $0.size == 4 })
    #expect(data.randomSplit([0.6, 0.4], seed: 1234, version: .spark2).map(\.count) == [99, 51])
    #expect(data.randomSplit([0.6, 0.4], seed: 1234, version: .spark3).map(\.count) == [87, 63])
    let bundle = try MLeapBundle(zip: try Self.file("Sources/Examples/Spark/neural_net.zip"))
    let accuracy = try SparkAccuracy.testSetAccuracy(data: data, bundle: bundle, version: .spark2)
    #expect("Test set accuracy = \(PythonFloat.string(accuracy))" == "Test set accuracy = 0.9019607843137255")
  }
}

@Suite("Python's str(float)")
struct PythonFloatTests {
  @Test func writesNumbersAsPythonDoes() {
    let cases: [(Double, String)] = [
      (0.9019607843137255, "0.9019607843137255"), (1.0, "1.0"), (0.0, "0.0"), (0.5, "0.5"), (2.0 / 3.0, "0.6666666666666666"),
      (0.0001, "0.0001"), (0.00001, "1e-05"), (1.5e-7, "1.5e-07"), (1e16, "1e+16"), (123456789012345.0, "123456789012345.0"),
      (1234567890123456.0, "1234567890123456.0"), (-0.25, "-0.25"), (100.0, "100.0"), (0.1 + 0.2, "0.30000000000000004"),
    ]
    for (value, python) in cases { #expect(PythonFloat.string(value) == python, "\(value)") }
  }
}

@Suite("libsvm")
struct LibSVMTests {
  @Test func readsSparseRowsAndRefusesMalformedOnes() throws {
    let rows = try LibSVM.parse("1 1:0.5 3:-2\n\n# note\n0 2:1e-3 4:-0.0\n")
    #expect(rows.count == 2 && rows[0].size == 4)
    #expect(rows[1].indices == [1], "zeros are not stored, as Spark's toSparse drops them")
    #expect(rows[0].dense == [0.5, 0, -2, 0] && rows[1].dense == [0, 0.001, 0, 0])
    for bad in ["x 1:2", "1 0:2", "1 2:1 1:3", "1 1-2", "1 1:abc"] {
      #expect(throws: SparkDataError.self, "\(bad)") { try LibSVM.parse(bad) }
    }
  }
}
