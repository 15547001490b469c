import Foundation

/// Spark ML's `MultilayerPerceptronClassificationModel`, bit for bit: sigmoid hidden layers, a
/// linear last layer (the raw prediction), softmax probabilities, the first index of the
/// largest raw value as the prediction.
///
/// Each neuron's sum is computed in the order and rounding of the BLAS the Spark version uses
/// (``SparkVersion``): Spark 2.4's F2J `dgemm` starts from the bias and adds each product
/// rounded; Spark 4's dev.ludovic.netlib accumulates the products with fused multiply-adds
/// from zero and adds the bias last. They differ in the last bits of the raw prediction.
public struct MultilayerPerceptron: Sendable, Equatable {
  /// Neurons per layer, input first.
  public let layers: [Int]
  /// Per layer, an `out × in` matrix stored column by column, then `out` biases.
  public let weights: [Double]

  /// Checks that `weights` fit `layers`; `source` names the file for errors.
  init(layers: [Int], weights: [Double], source: String) throws(BundleError) {
    guard layers.count >= 2, layers.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else {
      throw BundleError("\(source): layers \(layers.prefix(8)) are not at least two positive sizes")
    }
    var expected = 0
    for (inputs, outputs) in zip(layers, layers.dropFirst()) {
      let (product, overflow) = inputs.multipliedReportingOverflow(by: outputs)
      guard !overflow, expected <= Int.max - product - outputs else {
        throw BundleError("\(source): layers \(layers.prefix(8)) are too large")
      }
      expected += product + outputs
    }
    guard weights.count == expected else {
      throw BundleError("\(source): layers \(layers) need \(expected) weights, the bundle has \(weights.count)")
    }
    self.layers = layers
    self.weights = weights
  }

  /// The number of features the first layer takes.
  public var inputSize: Int { layers[0] }

  /// The last layer's output (before softmax) for `features`, as `version` computes it.
  public func rawPrediction(_ features: [Double], version: SparkVersion = .spark3) -> [Double] {
    precondition(features.count == inputSize, "the features do not match the first layer")
    var activation = features
    var offset = 0
    for layer in 0..<(layers.count - 1) {
      let inputs = layers[layer], outputs = layers[layer + 1]
      var next = [Double](repeating: 0, count: outputs)
      for output in 0..<outputs {
        let bias = weights[offset + inputs * outputs + output]
        var sum: Double
        switch version {
        case .spark2:
          sum = bias
          for input in 0..<inputs { sum += weights[offset + input * outputs + output] * activation[input] }
        case .spark3:
          sum = 0
          for input in 0..<inputs { sum = sum.addingProduct(weights[offset + input * outputs + output], activation[input]) }
          sum += bias
        }
        next[output] = layer == layers.count - 2 ? sum : 1.0 / (1.0 + exp(-sum))
      }
      offset += inputs * outputs + outputs
      activation = next
    }
    return activation
  }

  /// Softmax of the raw prediction, with the largest value subtracted first.
  public func probability(_ features: [Double], version: SparkVersion = .spark3) -> [Double] {
    let raw = rawPrediction(features, version: version)
    let largest = raw.max()!
    let exponentials = raw.map { exp($0 - largest) }
    let sum = exponentials.reduce(0, +)
    return exponentials.map { $0 / sum }
  }

  /// The predicted class: the first index of the largest raw value.
  public func prediction(_ features: [Double], version: SparkVersion = .spark3) -> Double {
    let raw = rawPrediction(features, version: version)
    var best = 0
    for index in raw.indices where raw[index] > raw[best] { best = index }
    return Double(best)
  }
}
