import NIOHPACK

/// What a call needs from its request's HEADERS, read in one pass that also checks the block
/// is a well-formed HTTP/2 request (RFC 9113 §8.2 and §8.3.1).
///
/// NIOHTTP2 could check header blocks itself, but it checked the ones this server sends as well
/// and read a request's fields again for every lookup: with its check, header blocks took 12 %
/// of the CPU at 16 connections × 16 streams. ``HTTP2ServerConnection`` checks none, and this
/// applies NIOHTTP2's rules to what callers send: field names are lowercase tokens, values have
/// no NUL, CR or LF (pseudo-header values no control character or space either), the
/// pseudo-headers come first, each once, only `:method`, `:scheme`, `:path` (not empty) and
/// `:authority` (a CONNECT request: `:method` and `:authority` only), the first three required,
/// no connection-specific field and `te` only as `trailers`. A block that breaks one is
/// malformed: ``GRPCStream`` resets the stream with PROTOCOL_ERROR, as NIOHTTP2 did.
struct RequestHeaders {
  /// `:method`.
  var method = ""
  /// `:path`; empty for a CONNECT request.
  var path = ""
  /// The first `content-type`, if any.
  var contentType: String?
  /// The first `grpc-encoding`, if any.
  var encoding: String?
  /// The first `grpc-timeout`, if any.
  var timeout: String?
  /// The first `x-request-id`, if any.
  var requestID: String?

  /// Reads `headers`, or returns `nil` when they are not a well-formed request.
  ///
  /// Names are told apart by their length first and each is then compared with one literal at
  /// most, and bytes are checked in the strings' contiguous UTF-8: comparing every name with
  /// every known one and walking `String.UTF8View` cost 6,000 instructions a call.
  init?(validating headers: HPACKHeaders) {
    var seen: PseudoHeaders = []
    var pseudoHeadersEnded = false
    for (name, value, _) in headers {
      if name.utf8.first == UInt8(ascii: ":") {
        guard !pseudoHeadersEnded, Self.isPseudoHeaderValue(value), let field = PseudoHeaders(named: name),
          !seen.contains(field)
        else { return nil }
        seen.insert(field)
        if field == .method {
          method = value
        } else if field == .path {
          path = value
        }
      } else {
        pseudoHeadersEnded = true
        guard Self.isRegularField(name: name, value: value) else { return nil }
        switch RegularField(named: name) {
        case .contentType: contentType = contentType ?? value
        case .encoding: encoding = encoding ?? value
        case .timeout: timeout = timeout ?? value
        case .requestID: requestID = requestID ?? value
        case .te: guard value == "trailers" else { return nil }
        case .connectionSpecific: return nil
        case .other: break
        }
      }
    }
    if method == "CONNECT" {
      guard seen == [.method, .authority] else { return nil }
    } else {
      guard seen.isSuperset(of: [.method, .scheme, .path]), !path.isEmpty else { return nil }
    }
  }

  /// Whether `trailers`, a request's second HEADERS, are well formed: regular fields only, none
  /// connection-specific.
  static func areValidTrailers(_ trailers: HPACKHeaders) -> Bool {
    trailers.allSatisfy { name, value, _ in
      name.utf8.first != UInt8(ascii: ":") && isRegularField(name: name, value: value)
        && RegularField(named: name) != .connectionSpecific
    }
  }

  private struct PseudoHeaders: OptionSet {
    let rawValue: UInt8
    static let method = PseudoHeaders(rawValue: 1 << 0)
    static let scheme = PseudoHeaders(rawValue: 1 << 1)
    static let path = PseudoHeaders(rawValue: 1 << 2)
    static let authority = PseudoHeaders(rawValue: 1 << 3)

    init(rawValue: UInt8) {
      self.rawValue = rawValue
    }

    /// The request pseudo-header `name` is; `nil` for any other (`:status`, `:protocol`, as no
    /// extended CONNECT is served here, or unknown).
    init?(named name: String) {
      switch name.utf8.count {
      case 5 where name == ":path": self = .path
      case 7 where name == ":method": self = .method
      case 7 where name == ":scheme": self = .scheme
      case 10 where name == ":authority": self = .authority
      default: return nil
      }
    }
  }

  /// The regular fields a request's reading looks at.
  private enum RegularField {
    case contentType, encoding, timeout, requestID, te
    /// `connection`, `transfer-encoding`, `proxy-connection`, `keep-alive`, `upgrade`: HTTP/1.1's,
    /// malformed in HTTP/2.
    case connectionSpecific
    case other

    init(named name: String) {
      switch name.utf8.count {
      case 2 where name == "te": self = .te
      case 7 where name == "upgrade": self = .connectionSpecific
      case 10 where name == "connection" || name == "keep-alive": self = .connectionSpecific
      case 12 where name == "content-type": self = .contentType
      case 12 where name == "grpc-timeout": self = .timeout
      case 12 where name == "x-request-id": self = .requestID
      case 13 where name == "grpc-encoding": self = .encoding
      case 16 where name == "proxy-connection": self = .connectionSpecific
      case 17 where name == "transfer-encoding": self = .connectionSpecific
      default: self = .other
      }
    }
  }

  /// A lowercase token name with a value free of NUL, CR and LF.
  private static func isRegularField(name: String, value: String) -> Bool {
    !name.isEmpty && allBytes(of: name, satisfy: isLowercaseTokenByte)
      && allBytes(of: value) { $0 != 0x00 && $0 != 0x0A && $0 != 0x0D }
  }

  /// RFC 9110's token characters without the uppercase letters (RFC 9113 §8.2.1).
  private static func isLowercaseTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case 0x21, 0x23...0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x30...0x39, 0x5E...0x7A, 0x7C, 0x7E: true
    default: false
    }
  }

  /// No control character, space or DEL: no pseudo-header's grammar has them.
  private static func isPseudoHeaderValue(_ value: String) -> Bool {
    allBytes(of: value) { $0 > 0x20 && $0 != 0x7F }
  }

  /// Whether every UTF-8 byte of `text` satisfies `predicate`, read in place when the string
  /// is contiguous (as decoded header strings are).
  @inline(__always)
  private static func allBytes(of text: String, satisfy predicate: (UInt8) -> Bool) -> Bool {
    text.utf8.withContiguousStorageIfAvailable { $0.allSatisfy(predicate) } ?? text.utf8.allSatisfy(predicate)
  }
}
