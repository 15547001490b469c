/// Which Spark to reproduce: `randomSplit`'s seed hashing changed in 3.0 (SPARK-23643), the
/// perceptron's arithmetic with the BLAS Spark uses (see ``MultilayerPerceptron``).
public enum SparkVersion: Int, Sendable, CaseIterable {
  /// Spark 2.x (up to 2.4, the seed's): the seed's 8 bytes are hashed with 56 zero bytes after
  /// them; F2J arithmetic.
  case spark2 = 2
  /// Spark 3.0 and later for the split (the seed's 8 bytes alone); Spark 4's arithmetic.
  case spark3 = 3
}

/// Spark's `XORShiftRandom` (a `java.util.Random` with an xorshift generator), as far as
/// `randomSplit` uses it.
struct XORShiftRandom {
  private var seed: UInt64

  init(seed: Int64, version: SparkVersion) {
    self.seed = Self.hashSeed(seed, version: version)
  }

  /// The seed scrambled by Scala's MurmurHash3 `bytesHash` over its big-endian bytes.
  static func hashSeed(_ seed: Int64, version: SparkVersion) -> UInt64 {
    var bytes = withUnsafeBytes(of: seed.bigEndian) { Array($0) }
    if version == .spark2 { bytes += [UInt8](repeating: 0, count: 56) }
    let low = MurmurHash3.bytesHash(bytes, seed: MurmurHash3.arraySeed)
    let high = MurmurHash3.bytesHash(bytes, seed: low)
    return UInt64(UInt32(bitPattern: high)) << 32 | UInt64(UInt32(bitPattern: low))
  }

  mutating func next(bits: Int) -> UInt64 {
    var next = seed ^ (seed << 21)
    next ^= next >> 35
    next ^= next << 4
    seed = next
    return next & ((1 << UInt64(bits)) - 1)
  }

  /// `java.util.Random.nextDouble`: 53 random bits as a fraction of 1.
  mutating func nextDouble() -> Double {
    let high = next(bits: 26), low = next(bits: 27)
    return Double((high << 27) + low) * 0x1.0p-53
  }
}

/// Scala's `scala.util.hashing.MurmurHash3`, the parts `XORShiftRandom.hashSeed` uses.
enum MurmurHash3 {
  static let arraySeed: Int32 = 0x3c07_4a61

  static func bytesHash(_ data: [UInt8], seed: Int32) -> Int32 {
    var hash = UInt32(bitPattern: seed)
    var index = 0
    while data.count - index >= 4 {
      let word = UInt32(data[index]) | UInt32(data[index + 1]) << 8 | UInt32(data[index + 2]) << 16
        | UInt32(data[index + 3]) << 24
      hash = mix(hash, word)
      index += 4
    }
    let remaining = data.count - index
    if remaining > 0 {
      var word: UInt32 = 0
      if remaining == 3 { word ^= UInt32(data[index + 2]) << 16 }
      if remaining >= 2 { word ^= UInt32(data[index + 1]) << 8 }
      word ^= UInt32(data[index])
      hash = mixLast(hash, word)
    }
    return Int32(bitPattern: avalanche(hash ^ UInt32(truncatingIfNeeded: data.count)))
  }

  private static func mixLast(_ hash: UInt32, _ word: UInt32) -> UInt32 {
    var k = word &* 0xcc9e_2d51
    k = k << 15 | k >> 17
    k = k &* 0x1b87_3593
    return hash ^ k
  }

  private static func mix(_ hash: UInt32, _ word: UInt32) -> UInt32 {
    var h = mixLast(hash, word)
    h = h << 13 | h >> 19
    return h &* 5 &+ 0xe654_6b64
  }

  private static func avalanche(_ hash: UInt32) -> UInt32 {
    var h = hash
    h ^= h >> 16
    h = h &* 0x85eb_ca6b
    h ^= h >> 13
    h = h &* 0xc2b2_ae35
    h ^= h >> 16
    return h
  }
}

extension Array where Element == LabeledPoint {
  /// Spark's `Dataset.randomSplit(weights, seed)` on the one partition a small libsvm file
  /// loads into: the rows sorted by label then features (as Spark sorts a partition for a
  /// deterministic split), then row `i` goes to split `k` when the `i`-th draw of
  /// `XORShiftRandom(seed)` falls in `[cumulative_k, cumulative_k+1)` of the normalised weights.
  public func randomSplit(_ weights: [Double], seed: Int64, version: SparkVersion) -> [[LabeledPoint]] {
    let total = weights.reduce(0, +)
    var bounds: [Double] = [0]
    for weight in weights { bounds.append(bounds.last! + weight / total) }
    let sorted = self.sorted(by: SparkRowOrdering.precedes)
    return (0..<weights.count).map { split in
      var random = XORShiftRandom(seed: seed, version: version)
      return sorted.filter { _ in
        let draw = random.nextDouble()
        return draw >= bounds[split] && draw < bounds[split + 1]
      }
    }
  }
}

/// How Spark SQL orders `(label, features)` rows: doubles as `SQLOrderingUtil.compareDoubles`
/// (−0.0 equals 0.0, NaN last), a sparse vector as its struct `(type 0, size, indices, values)`,
/// arrays element by element, a shorter prefix first.
enum SparkRowOrdering {
  static func precedes(_ a: LabeledPoint, _ b: LabeledPoint) -> Bool {
    var order = compare(a.label, b.label)
    if order == 0 { order = a.size < b.size ? -1 : a.size > b.size ? 1 : 0 }
    if order == 0 { order = compareArrays(a.indices, b.indices) { $0 < $1 ? -1 : $0 > $1 ? 1 : 0 } }
    if order == 0 { order = compareArrays(a.values, b.values, by: compare) }
    return order < 0
  }

  static func compare(_ x: Double, _ y: Double) -> Int {
    if x == y { return 0 }
    if x.isNaN { return y.isNaN ? 0 : 1 }
    if y.isNaN { return -1 }
    return x < y ? -1 : 1
  }

  static func compareArrays<T>(_ a: [T], _ b: [T], by compare: (T, T) -> Int) -> Int {
    for (x, y) in zip(a, b) {
      let order = compare(x, y)
      if order != 0 { return order }
    }
    return a.count < b.count ? -1 : a.count > b.count ? 1 : 0
  }
}
