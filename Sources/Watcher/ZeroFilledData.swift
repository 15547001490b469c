#if canImport(Glibc)
import Glibc
#endif

/// The executable's zero-filled data (`.bss`: the Swift runtime's and every module's caches of
/// type metadata, witness tables and `once` tokens), made resident and writable in one step
/// while the process has one thread.
///
/// Left to itself, a start reads such a cache before filling it: the read maps the kernel's
/// shared zero page, and the write that follows replaces that mapping, which must then be
/// flushed from the TLB of every CPU running one of the process's threads. Once the event loops'
/// threads run, each is an interprocessor interrupt (a hypervisor exit on a VM), ~70 in a start,
/// ~0.7 ms of its CPU here. `madvise(MADV_POPULATE_WRITE)` gives every page its own zeroed
/// frame first, with nothing to flush elsewhere; the pages nothing writes (about half) cost their
/// memory, ~0.4 MiB.
enum ZeroFilledData {
  /// Makes ``ranges()`` resident and writable; returns how many bytes that covers (0 where the
  /// kernel, older than Linux 5.14, or the C library cannot).
  @discardableResult
  static func populate() -> Int {
    #if canImport(Glibc)
    ranges().reduce(0) { populated, range in
      guard let start = UnsafeMutableRawPointer(bitPattern: range.lowerBound),
        madvise(start, range.count, 23) == 0  // MADV_POPULATE_WRITE
      else { return populated }
      return populated + range.count
    }
    #else
    return 0
    #endif
  }

  /// The whole pages of the executable's writable segments past the bytes its file holds.
  static func ranges() -> [Range<UInt>] {
    #if canImport(Glibc)
    guard let (headers, bias) = ProgramHeaders.ofExecutable() else { return [] }
    let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
    return headers.all.compactMap { segment in
      guard segment.type == ProgramHeaders.load, segment.isWritable else { return nil }
      // The page the file's bytes end in is the file's; the rest, the kernel's zero pages.
      let start = (bias &+ segment.address &+ segment.fileSize &+ page - 1) / page * page
      let end = (bias &+ segment.address &+ segment.size &+ page - 1) / page * page
      return end > start ? start..<end : nil
    }
    #else
    return []
    #endif
  }
}
