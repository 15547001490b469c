import Glibc
import Testing

@testable import Watcher

@Suite("Read-only segments")
struct ReadOnlySegmentsTests {
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

  /// This process's mappings: address range, permissions ("r-xp") and name, from /proc/self/maps.
  static func mappings() throws -> [(range: Range<UInt>, permissions: String, name: String)] {
    let descriptor = open("/proc/self/maps", O_RDONLY)
    try #require(descriptor >= 0)
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while case let count = chunk.withUnsafeMutableBytes({ read(descriptor, $0.baseAddress, $0.count) }), count > 0 {
      bytes += chunk[..<count]
    }
    return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map { line in
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      let bounds = fields[0].split(separator: "-").compactMap { UInt($0, radix: 16) }
      return (bounds[0]..<bounds[1], String(fields[1]), fields.count > 5 ? String(fields[5]) : "")
    }
  }

  /// The executable's unwind tables, `.eh_frame` up to the end of `.eh_frame_hdr` (which GNU
  /// linkers place right after it; the header's first field, encoded as 0x1b says, points at it).
  static func unwindTables() throws -> Range<UInt> {
    let (headers, bias) = try #require(ProgramHeaders.ofExecutable())
    let header = try #require(headers.all.first { $0.type == 0x6474_e550 })  // PT_GNU_EH_FRAME
    let hdr = bias &+ header.address
    let bytes = try #require(UnsafeRawPointer(bitPattern: hdr))
    #expect(bytes.load(fromByteOffset: 1, as: UInt8.self) == 0x1b)
    let frames = UInt(bitPattern: Int(bitPattern: hdr + 4) + Int(bytes.loadUnaligned(fromByteOffset: 4, as: Int32.self)))
    #expect(frames < hdr)
    return frames..<(hdr + header.size)
  }

  @Test func theyAreTheCodeOfTheExecutableAndItsLibrariesAndNoWritableOrVDSOPage() throws {
    let segments = ReadOnlySegments.loaded()
    let mappings = try Self.mappings()
    let function: @convention(c) () -> Void = {}
    let ownCode = UInt(bitPattern: unsafeBitCast(function, to: Int.self))
    let libcCode = UInt(bitPattern: unsafeBitCast(lookUpCFunction("getpid") as (@convention(c) () -> Void)?, to: Int.self))
    #expect(ownCode != 0 && segments.contains { $0.contains(ownCode) })
    #expect(libcCode != 0 && segments.contains { $0.contains(libcCode) })
    let unwindTables = try Self.unwindTables()
    #expect(segments.contains { $0.contains(unwindTables.lowerBound + 4096) })
    for segment in segments {
      for mapping in mappings where mapping.range.overlaps(segment) {
        #expect(!mapping.permissions.contains("w"), "\(segment) overlaps a writable mapping \(mapping.name)")
        #expect(mapping.name != "[vdso]")
      }
    }
    #expect(mappings.contains { $0.name == "[vdso]" })
  }

  /// Program headers with one PT_DYNAMIC header over `entries` (tag, value pairs).
  static func withDynamicSection<Result>(_ entries: [(Int64, UInt64)], _ body: (ProgramHeaders) -> Result) -> Result {
    let dynamic = entries.flatMap { [UInt64(bitPattern: $0.0), $0.1] }
    return dynamic.withUnsafeBytes { table in
      // Elf64_Phdr: p_type 2 (PT_DYNAMIC) and p_flags 0, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align.
      let address = UInt64(UInt(bitPattern: table.baseAddress))
      let header: [UInt64] = [2, 0, address, 0, UInt64(table.count), UInt64(table.count), 8]
      return header.withUnsafeBytes { body(ProgramHeaders(table: $0.baseAddress!, count: 1)) }
    }
  }

  @Test func objectsWhoseLoaderWritesTheirReadOnlySegmentsAreLeftAlone() {
    #expect(Self.withDynamicSection([(22, 0), (0, 0)]) { $0.hasTextRelocations(bias: 0) })  // DT_TEXTREL
    #expect(Self.withDynamicSection([(30, 0x4 | 0x8), (0, 0)]) { $0.hasTextRelocations(bias: 0) })  // DF_TEXTREL
    #expect(!Self.withDynamicSection([(30, 0x8), (1, 5), (0, 0)]) { $0.hasTextRelocations(bias: 0) })
    #expect(!Self.withDynamicSection([(1, 5), (0, 0), (22, 0)]) { $0.hasTextRelocations(bias: 0) })  // after DT_NULL
  }

  @Test func theirPagesAreGivenBackAndReadTheSameAfterwards() throws {
    let range = try Self.unwindTables()
    #expect(range.count > 4096)
    let table = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: range.lowerBound), count: range.count)
    // Reading every byte maps every page (a watcher started by a test running beside this one
    // may drop them again at any time, which is why their being mapped is not checked here).
    let before = table.reduce(into: UInt64(0)) { $0 = $0 &* 31 &+ UInt64($1) }
    #expect(Self.residentPages(range).count > 2)

    // Nothing in this process runs the unwind tables' pages, but other tests run meanwhile, and
    // Swift Testing takes a backtrace of every error they throw, which pages back in the parts of
    // the tables its lookups read (64 KiB around each page touched). So not every page need be
    // gone, but most must be, in the best of a few tries: without the release every one of them
    // stays, as they were all just read. (Tests/e2e checks the watcher's own process, where
    // nothing else runs, for every page.)
    var fewestStillMapped = Int.max
    var inner = 0
    for _ in 0..<10 where fewestStillMapped > 0 {
      let released = ReadOnlySegments.releaseResidentPages()
      #expect(released >= range.count - 2 * 4096)
      let pages = Self.residentPages(range).dropFirst().dropLast()
      inner = pages.count
      fewestStillMapped = min(fewestStillMapped, pages.filter { $0 }.count)
    }
    #expect(inner > 2)
    #expect(fewestStillMapped * 2 < inner, "\(fewestStillMapped) of \(inner) pages still mapped after the release")
    let after = table.reduce(into: UInt64(0)) { $0 = $0 &* 31 &+ UInt64($1) }
    #expect(after == before)
  }
}
