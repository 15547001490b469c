#if canImport(Glibc)
import Glibc
#endif

/// Gives back the resident pages of the process's read-only segments: the code and constant
/// data of the executable and of every shared library it loaded (not the vDSO's).
///
/// A start runs code that no call runs again (parsing settings, the Swift runtime's and NIO's
/// set-up, binding) and reads tables nothing reads later (`.eh_frame`: Swift's asynchronous
/// `main` ends the main thread with `pthread_exit`, whose forced unwind searches them), and the
/// kernel maps 64 KiB around each page touched. Read-only segments are backed by their files and
/// never written, so dropping their pages (`madvise(MADV_DONTNEED)`) loses nothing: they stay in
/// the page cache, and whatever runs next faults back in what it needs (~3 µs a fault here). The
/// watcher drops them once its start-up is over and no call runs, then warms up again, which
/// faults the call path back in: what stays resident is what calls and the idle watcher use.
/// Writable segments are left alone: a page of theirs may hold data written since the start. So
/// are an object's whose read-only segments the loader wrote into (text relocations).
enum ReadOnlySegments {
  /// The whole pages of every read-only loaded segment, executable and shared libraries alike.
  static func loaded() -> [Range<UInt>] {
    #if canImport(Glibc)
    guard let iterate: DLIteratePhdr = lookUpCFunction("dl_iterate_phdr"),
      let getauxval: @convention(c) (UInt) -> UInt = lookUpCFunction("getauxval")
    else { return [] }
    var found = Found(vdso: getauxval(33))  // AT_SYSINFO_EHDR
    _ = withUnsafeMutablePointer(to: &found) { iterate(collectSegments, $0) }
    return found.ranges
    #else
    return []
    #endif
  }

  /// Drops the resident pages of ``loaded()``; returns how many bytes the segments cover.
  @discardableResult
  static func releaseResidentPages() -> Int {
    #if canImport(Glibc)
    loaded().reduce(0) { released, range in
      guard let start = UnsafeMutableRawPointer(bitPattern: range.lowerBound),
        madvise(start, range.count, MADV_DONTNEED) == 0
      else { return released }
      return released + range.count
    }
    #else
    return 0
    #endif
  }

  /// `dl_iterate_phdr`'s signature, with `struct dl_phdr_info` (from link.h, which the Glibc
  /// module leaves out) as a raw pointer.
  typealias DLIteratePhdr =
    @convention(c) (
      @convention(c) (UnsafeRawPointer?, Int, UnsafeMutableRawPointer?) -> Int32, UnsafeMutableRawPointer?
    ) -> Int32

  /// What the callback gathers.
  struct Found {
    /// The vDSO's address, whose object the kernel maps: none of its pages is dropped.
    let vdso: UInt
    var ranges: [Range<UInt>] = []
  }
}

#if canImport(Glibc)
/// `dl_iterate_phdr`'s callback: adds the read-only `PT_LOAD` segments of one object, each to the
/// whole pages inside it, to the `Found` that `data` points to.
private func collectSegments(info: UnsafeRawPointer?, size: Int, data: UnsafeMutableRawPointer?) -> Int32 {
  // struct dl_phdr_info: dlpi_addr (load bias), dlpi_name, dlpi_phdr, dlpi_phnum (UInt16).
  guard let info, let data, size >= 26 else { return 0 }
  let found = data.assumingMemoryBound(to: ReadOnlySegments.Found.self)
  let bias = info.load(as: UInt.self)
  guard let table = info.load(fromByteOffset: 16, as: UnsafeRawPointer?.self) else { return 0 }
  let headers = ProgramHeaders(table: table, count: Int(info.load(fromByteOffset: 24, as: UInt16.self)))
  let vdso = found.pointee.vdso
  // The vDSO's ELF header, at AT_SYSINFO_EHDR, starts its first loaded segment.
  guard !headers.all.contains(where: { $0.type == ProgramHeaders.load && bias &+ $0.address == vdso }),
    !headers.hasTextRelocations(bias: bias)
  else { return 0 }
  let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
  for segment in headers.all where segment.type == ProgramHeaders.load && !segment.isWritable {
    let start = (bias &+ segment.address + page - 1) / page * page
    let end = (bias &+ segment.address + segment.size) / page * page
    if end > start { found.pointee.ranges.append(start..<end) }
  }
  return 0
}
#endif

/// An ELF object's program headers, read where the loader left them (64-bit objects).
struct ProgramHeaders {
  static let load: UInt32 = 1
  static let dynamic: UInt32 = 2
  static let programHeaders: UInt32 = 6

  struct Header {
    let type: UInt32
    let flags: UInt32
    let address: UInt
    /// The bytes the file holds; the rest of ``size`` is zero-filled.
    let fileSize: UInt
    let size: UInt
    var isWritable: Bool { flags & 0x2 != 0 }
  }

  /// The headers.
  let all: [Header]

  /// Whether the object's dynamic section asks the loader to write into its read-only segments
  /// (`DT_TEXTREL`, or `DF_TEXTREL` in `DT_FLAGS`): their pages then differ from the file's.
  func hasTextRelocations(bias: UInt) -> Bool {
    guard let dynamic = all.first(where: { $0.type == Self.dynamic }),
      let entries = UnsafeRawPointer(bitPattern: bias &+ dynamic.address)
    else { return false }
    // Elf64_Dyn: d_tag, d_val (Int64, UInt64); DT_NULL ends the table.
    for index in 0..<Int(dynamic.size / 16) {
      let tag = entries.load(fromByteOffset: index * 16, as: Int64.self)
      let value = entries.load(fromByteOffset: index * 16 + 8, as: UInt64.self)
      switch tag {
      case 0: return false  // DT_NULL
      case 22: return true  // DT_TEXTREL
      case 30 where value & 0x4 != 0: return true  // DT_FLAGS with DF_TEXTREL
      default: continue
      }
    }
    return false
  }

  /// The running executable's headers (where `AT_PHDR` says the loader left them) and its load
  /// bias (where they are, less where its `PT_PHDR` says they are); `nil` without `getauxval`
  /// or a `PT_PHDR`.
  static func ofExecutable() -> (headers: ProgramHeaders, bias: UInt)? {
    #if canImport(Glibc)
    guard let getauxval: @convention(c) (UInt) -> UInt = lookUpCFunction("getauxval"),
      let table = UnsafeRawPointer(bitPattern: getauxval(3)),  // AT_PHDR
      case let headers = ProgramHeaders(table: table, count: Int(getauxval(5))),  // AT_PHNUM
      let own = headers.all.first(where: { $0.type == programHeaders })
    else { return nil }
    return (headers, UInt(bitPattern: table) &- own.address)
    #else
    return nil
    #endif
  }

  /// Reads `count` headers (Elf64_Phdr: p_type, p_flags as UInt32, then p_offset, p_vaddr,
  /// p_paddr, p_filesz, p_memsz, p_align as UInt64: 56 bytes each) at `table`.
  init(table: UnsafeRawPointer, count: Int) {
    all = (0..<count).map { index in
      let entry = table + index * 56
      return Header(
        type: entry.load(as: UInt32.self), flags: entry.load(fromByteOffset: 4, as: UInt32.self),
        address: UInt(entry.load(fromByteOffset: 16, as: UInt64.self)),
        fileSize: UInt(entry.load(fromByteOffset: 32, as: UInt64.self)),
        size: UInt(entry.load(fromByteOffset: 40, as: UInt64.self)))
    }
  }
}
