import Glibc
import Testing

@testable import Watcher

@Suite("Unwind tables")
struct UnwindTablesTests {
  /// Whether each page of `range` is mapped in this process: /proc/self/pagemap's "present"
  /// bit (mincore would tell whether the file's pages are in the page cache, which they stay).
  static func residentPages(_ range: Range<UInt>) -> [Bool] {
    let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
    let pages = (range.lowerBound / page)..<((range.upperBound + page - 1) / page)
    let descriptor = open("/proc/self/pagemap", O_RDONLY)
    guard descriptor >= 0 else { return [] }
    defer { close(descriptor) }
    var entries = [UInt64](repeating: 0, count: pages.count)
    let size = pages.count * 8
    let read = entries.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, size, off_t(pages.lowerBound * 8)) }
    guard read == size else { return [] }
    return entries.map { $0 >> 63 == 1 }
  }

  @Test func theTablesPagesAreGivenBackAndReadTheSameAfterwards() throws {
    let range = try #require(UnwindTables.tableRange())
    #expect(range.count > 4096)
    let table = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: range.lowerBound), count: range.count)
    // Reading every byte maps every page (a watcher started by a test running beside this one
    // may drop them again at any time, which is why their being mapped is not checked here).
    let before = table.reduce(into: UInt64(0)) { $0 = $0 &* 31 &+ UInt64($1) }
    #expect(Self.residentPages(range).count > 2)

    // The pages wholly inside the tables are gone (the first and last may be shared with others).
    // Other tests run in this process meanwhile, and Swift Testing takes a backtrace of every
    // error they throw, which pages back in the parts of the tables its lookups read (64 KiB
    // around each page touched). So not every page need be gone, but most must be, in the best
    // of a few tries: without the release every one of them stays, as they were all just read.
    // (Tests/e2e checks the watcher's own process, where nothing else runs, for every page.)
    var fewestStillMapped = Int.max
    var inner = 0
    for _ in 0..<10 where fewestStillMapped > 0 {
      let released = UnwindTables.releaseResidentPages()
      #expect(released > 0 && released <= range.count)
      let pages = Self.residentPages(range).dropFirst().dropLast()
      inner = pages.count
      fewestStillMapped = min(fewestStillMapped, pages.filter { $0 }.count)
    }
    #expect(inner > 2)
    #expect(fewestStillMapped * 2 < inner, "\(fewestStillMapped) of \(inner) pages still mapped after the release")
    let after = table.reduce(into: UInt64(0)) { $0 = $0 &* 31 &+ UInt64($1) }
    #expect(after == before)
  }

  @Test func theExecutablesProgramHeadersAreFound() throws {
    let headers = try #require(ProgramHeaders.ofExecutable())
    #expect(headers.all.contains { $0.type == ProgramHeaders.load })
    #expect(headers.all.contains { $0.type == ProgramHeaders.ehFrameHeader })
  }
}
