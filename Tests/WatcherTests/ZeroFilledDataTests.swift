import Glibc
import Testing

@testable import Watcher

@Suite("Zero-filled data")
struct ZeroFilledDataTests {
  @Test func itIsTheExecutablesWritablePagesPastItsFileAndPopulatingMakesThemResident() throws {
    let ranges = ZeroFilledData.ranges()
    try #require(!ranges.isEmpty, "a Swift executable has a .bss")
    let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
    let mappings = try ReadOnlySegmentsTests.mappings()
    for range in ranges {
      #expect(range.lowerBound % page == 0 && range.upperBound % page == 0)
      let mapping = mappings.first { $0.range.contains(range.lowerBound) }
      #expect(mapping?.permissions == "rw-p", "\(range) is in \(String(describing: mapping))")
    }

    #expect(ZeroFilledData.populate() == ranges.reduce(0) { $0 + $1.count })
    for range in ranges {
      let resident = ReadOnlySegmentsTests.residentPages(range)
      #expect(resident.count == range.count / Int(page))
      #expect(resident.allSatisfy { $0 }, "\(resident.filter { !$0 }.count) pages of \(range) not resident")
    }
  }
}
