/// One row of a libsvm file as Spark's `libsvm` data source loads it: a label and a sparse
/// feature vector (zero-based indices, in increasing order).
public struct LabeledPoint: Sendable, Equatable {
  /// The row's label.
  public var label: Double
  /// The vector's size: the number of features of the whole file.
  public var size: Int
  /// Zero-based indices of the stored values, increasing.
  public var indices: [Int]
  /// The stored values.
  public var values: [Double]

  /// The vector as a dense array of `size` values.
  public var dense: [Double] {
    var dense = [Double](repeating: 0, count: size)
    for (index, value) in zip(indices, values) { dense[index] = value }
    return dense
  }
}

/// Why the data could not be read, with the line it is about.
public struct SparkDataError: Error, Equatable, CustomStringConvertible {
  /// What is wrong, for the caller.
  public let message: String

  init(_ message: String) {
    self.message = message
  }

  public var description: String { message }
}

/// Spark's `libsvm` format: `label index:value index:value …` per line, indices one-based and
/// increasing; blank lines and lines starting with `#` are skipped; the number of features is
/// the largest index in the file. As Spark's data source stores each vector with `toSparse`,
/// entries whose value is zero (`-0.0` too) are dropped, which matters to how rows sort.
public enum LibSVM {
  /// Parses `text`; a malformed line is an error naming it.
  public static func parse(_ text: String) throws(SparkDataError) -> [LabeledPoint] {
    var rows: [(label: Double, indices: [Int], values: [Double])] = []
    var features = 0
    for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let trimmed = line.trimmingWhitespace()
      guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
      let items = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
      guard let label = Double(items[0]), label.isFinite else {
        throw SparkDataError("line \(number + 1): the label \"\(items[0].prefix(32))\" is not a number")
      }
      var indices: [Int] = []
      var values: [Double] = []
      for item in items.dropFirst() {
        let parts = item.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let index = Int(parts[0]), index >= 1, let value = Double(parts[1]) else {
          throw SparkDataError("line \(number + 1): \"\(item.prefix(32))\" is not index:value with a one-based index")
        }
        guard indices.last.map({ index - 1 > $0 }) ?? true else {
          throw SparkDataError("line \(number + 1): indices must increase, \(index) does not")
        }
        indices.append(index - 1)
        values.append(value)
      }
      features = max(features, (indices.last ?? -1) + 1)
      let stored = zip(indices, values).filter { $0.1 != 0 }
      rows.append((label, stored.map(\.0), stored.map(\.1)))
    }
    return rows.map { LabeledPoint(label: $0.label, size: features, indices: $0.indices, values: $0.values) }
  }
}

extension Substring {
  func trimmingWhitespace() -> Substring {
    let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
    guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
      return ""
    }
    return self[first...last]
  }
}
