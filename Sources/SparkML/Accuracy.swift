/// The seed's evaluation: Spark's `MulticlassClassificationEvaluator(metricName="accuracy")`
/// over the test split, the fraction of rows whose prediction equals the label.
public enum SparkAccuracy {
  /// The test split's accuracy under `bundle`: `data` split as `randomSplit([0.6, 0.4], seed)`.
  public static func testSetAccuracy(
    data: [LabeledPoint], bundle: MLeapBundle, seed: Int64 = 1234, version: SparkVersion
  ) throws(BundleError) -> Double {
    let test = data.randomSplit([0.6, 0.4], seed: seed, version: version)[1]
    guard !test.isEmpty else { throw BundleError("the test split is empty; accuracy is undefined") }
    var correct = 0
    for row in test {
      var prediction = Double.nan
      for stage in bundle.stages {
        switch stage {
        case .multilayerPerceptron(let perceptron):
          guard perceptron.inputSize == row.size else {
            throw BundleError(
              "the model's first layer takes \(perceptron.inputSize) features, the data has \(row.size)")
          }
          prediction = perceptron.prediction(row.dense, version: version)
        }
      }
      if prediction == row.label { correct += 1 }
    }
    return Double(correct) / Double(test.count)
  }
}

/// Python's `str(float)` (= `repr`): the shortest digits that read back as the same double, in
/// positional notation for 1e-4 ≤ |x| < 1e16 (with `.0` when whole), else as `d.ddde±XX`.
public enum PythonFloat {
  public static func string(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description has the shortest round-trip digits; take them apart.
    let text = "\(value.magnitude)"
    var mantissa = Substring(text), exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
      mantissa = text[..<e]
      exponent = Int(text[text.index(after: e)...])!
    }
    let point = mantissa.firstIndex(of: ".")
    let whole = point.map { mantissa[..<$0] } ?? mantissa
    let fraction = point.map { mantissa[mantissa.index(after: $0)...] } ?? ""
    var digits = String(whole + fraction)
    var decimalExponent = exponent + whole.count  // value = 0.digits × 10^decimalExponent
    while digits.hasPrefix("0") && digits.count > 1 {
      digits.removeFirst()
      decimalExponent -= 1
    }
    while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
    let sign = value < 0 ? "-" : ""
    let scientific = decimalExponent - 1  // value = d.ddd × 10^scientific
    if scientific < -4 || scientific >= 16 {
      let rest = digits.dropFirst()
      let mantissaText = rest.isEmpty ? String(digits.prefix(1)) : "\(digits.prefix(1)).\(rest)"
      let exponentText = String(abs(scientific))
      return "\(sign)\(mantissaText)e\(scientific < 0 ? "-" : "+")\(exponentText.count < 2 ? "0" : "")\(exponentText)"
    }
    if decimalExponent <= 0 {
      return "\(sign)0.\(String(repeating: "0", count: -decimalExponent))\(digits)"
    }
    if decimalExponent >= digits.count {
      return "\(sign)\(digits)\(String(repeating: "0", count: decimalExponent - digits.count)).0"
    }
    let split = digits.index(digits.startIndex, offsetBy: decimalExponent)
    return "\(sign)\(digits[..<split]).\(digits[split...])"
  }
}
