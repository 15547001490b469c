#if canImport(Glibc)
import Glibc
#endif

/// Gives back the resident pages of the executable's unwind tables (`.eh_frame` and
/// `.eh_frame_hdr`), which a running watcher does not read.
///
/// Swift's asynchronous `main` ends the main thread with `pthread_exit` (in `dispatch_main`),
/// whose forced unwind looks up each frame's entry: a binary search over the whole table, and
/// the kernel maps 64 KiB around each page it touches. That left ~660 KB of a function's
/// 9 MB resident for nothing; Swift errors do not unwind. The pages are read-only and backed by
/// the executable's file, so dropping them (`madvise(MADV_DONTNEED)`) loses nothing: whatever
/// reads them later (a crash report) faults them back in.
enum UnwindTables {
  /// Drops the pages the unwind tables fill wholly; returns how many bytes that covered (0
  /// where the tables cannot be found or do not lie in a read-only segment).
  @discardableResult
  static func releaseResidentPages() -> Int {
    #if canImport(Glibc)
    guard let range = tableRange() else { return 0 }
    let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
    let start = (range.lowerBound + page - 1) / page * page
    let end = range.upperBound / page * page
    guard end > start, let pages = UnsafeMutableRawPointer(bitPattern: start) else { return 0 }
    return madvise(pages, Int(end - start), MADV_DONTNEED) == 0 ? Int(end - start) : 0
    #else
    return 0
    #endif
  }

  /// The addresses of `.eh_frame_hdr` and, when it lies right before it (as the linkers place
  /// it), `.eh_frame`, from the executable's program headers; `nil` unless both are in a
  /// read-only loaded segment.
  static func tableRange() -> Range<UInt>? {
    guard let headers = ProgramHeaders.ofExecutable(),
      let header = headers.all.first(where: { $0.type == ProgramHeaders.ehFrameHeader })
    else { return nil }
    let hdr = headers.bias + header.address
    let hdrEnd = hdr + header.size
    guard
      let segment = headers.all.first(where: {
        $0.type == ProgramHeaders.load && headers.bias + $0.address <= hdr && hdrEnd <= headers.bias + $0.address + $0.size
      }), !segment.isWritable
    else { return nil }
    let segmentStart = headers.bias + segment.address
    var start = hdr
    // The header's second byte says how its first field, the address of .eh_frame, is encoded:
    // 0x1b is what GNU linkers write (an int32 relative to the field itself).
    let bytes = UnsafeRawPointer(bitPattern: hdr)!
    if header.size >= 8, bytes.load(fromByteOffset: 1, as: UInt8.self) == 0x1b {
      let offset = Int(bytes.loadUnaligned(fromByteOffset: 4, as: Int32.self))
      let frames = UInt(bitPattern: Int(bitPattern: hdr + 4) + offset)
      if frames >= segmentStart && frames < hdr { start = frames }
    }
    return start..<hdrEnd
  }
}

/// The executable's program headers, read where the loader left them (`getauxval(AT_PHDR)`).
struct ProgramHeaders {
  static let load: UInt32 = 1
  static let programHeader: UInt32 = 6
  static let ehFrameHeader: UInt32 = 0x6474_e550

  struct Header {
    let type: UInt32
    let flags: UInt32
    let address: UInt
    let size: UInt
    var isWritable: Bool { flags & 0x2 != 0 }
  }

  /// The headers.
  let all: [Header]
  /// How far the executable was loaded from its link-time addresses (0 unless it is a PIE).
  let bias: UInt

  static func ofExecutable() -> ProgramHeaders? {
    guard let getauxval: @convention(c) (UInt) -> UInt = lookUpCFunction("getauxval") else { return nil }
    let (table, count) = (getauxval(3), getauxval(5))  // AT_PHDR, AT_PHNUM
    guard let base = UnsafeRawPointer(bitPattern: table), count > 0 else { return nil }
    // Elf64_Phdr: p_type, p_flags (UInt32 each), then p_offset, p_vaddr, p_paddr, p_filesz,
    // p_memsz, p_align (UInt64 each): 56 bytes.
    let all = (0..<Int(count)).map { index in
      let entry = base + index * 56
      return Header(
        type: entry.load(as: UInt32.self), flags: entry.load(fromByteOffset: 4, as: UInt32.self),
        address: UInt(entry.load(fromByteOffset: 16, as: UInt64.self)),
        size: UInt(entry.load(fromByteOffset: 40, as: UInt64.self)))
    }
    let own = all.first { $0.type == programHeader }
    return ProgramHeaders(all: all, bias: own.map { table &- $0.address } ?? 0)
  }
}
