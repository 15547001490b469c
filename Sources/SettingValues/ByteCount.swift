/// Parses sizes as the settings write them: `4194304`, `512KiB`/`512Ki`/`512K`,
/// `4MiB`/`4Mi`/`4M`, `1GiB`/`1Gi`/`1G`, `100B` (all multiples are powers of 1024).
public enum ByteCount {
  /// The number of bytes `text` denotes, or `nil` when it is not a size or overflows.
  public static func parse(_ text: String) -> Int? {
    let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("Ki", 1 << 10), ("Mi", 1 << 20),
      ("Gi", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
      guard let count = Int(text.dropLast(suffix.count)), count >= 0 else { return nil }
      let (bytes, overflow) = count.multipliedReportingOverflow(by: scale)
      return overflow ? nil : bytes
    }
    return Int(text)
  }
}
