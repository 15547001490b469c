import NIOHPACK

/// What a call needs from its request's HEADERS, read in one pass that also checks the block
/// is a well-formed HTTP/2 request (RFC 9113 §8.2 and §8.3.1).
///
/// NIOHTTP2 can check header blocks itself, but it checks the ones this server sends as well
/// and reads a request's fields again for every lookup: with its check, header blocks took 12 %
/// of the CPU at 16 connections × 16 streams. Its check is off (``HTTP2Endpoint``) and this one
/// applies the same rules to what callers send: field names are lowercase tokens, values have
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
  init?(validating headers: HPACKHeaders) {
    var seen: PseudoHeaders = []
    var pseudoHeadersEnded = false
    for (name, value, _) in headers {
      if name.utf8.first == UInt8(ascii: ":") {
        guard !pseudoHeadersEnded, Self.isPseudoHeaderValue(value) else { return nil }
        let field: PseudoHeaders
        switch name {
        case ":method":
          field = .method
          method = value
        case ":path":
          field = .path
          path = value
        case ":scheme": field = .scheme
        case ":authority": field = .authority
        default: return nil  // :status, :protocol (no extended CONNECT here) or unknown
        }
        guard !seen.contains(field) else { return nil }
        seen.insert(field)
      } else {
        pseudoHeadersEnded = true
        guard Self.isRegularField(name: name, value: value) else { return nil }
        switch name {
        case "content-type": contentType = contentType ?? value
        case "grpc-encoding": encoding = encoding ?? value
        case "grpc-timeout": timeout = timeout ?? value
        case "x-request-id": requestID = requestID ?? value
        case "te": guard value == "trailers" else { return nil }
        default: break
        }
      }
    }
    if method == "CONNECT" {
      guard seen == [.method, .authority] else { return nil }
    } else {
      guard seen.isSuperset(of: [.method, .scheme, .path]), !path.isEmpty else { return nil }
    }
  }

  /// Whether `trailers`, a request's second HEADERS, are well formed: regular fields only.
  static func areValidTrailers(_ trailers: HPACKHeaders) -> Bool {
    trailers.allSatisfy { name, value, _ in name.utf8.first != UInt8(ascii: ":") && isRegularField(name: name, value: value) }
  }

  private struct PseudoHeaders: OptionSet {
    let rawValue: UInt8
    static let method = PseudoHeaders(rawValue: 1 << 0)
    static let scheme = PseudoHeaders(rawValue: 1 << 1)
    static let path = PseudoHeaders(rawValue: 1 << 2)
    static let authority = PseudoHeaders(rawValue: 1 << 3)
  }

  /// A lowercase token name that is not connection-specific, with a value free of NUL, CR and LF.
  private static func isRegularField(name: String, value: String) -> Bool {
    guard !name.isEmpty, name.utf8.allSatisfy(isLowercaseTokenByte),
      !value.utf8.contains(where: { $0 == 0x00 || $0 == 0x0A || $0 == 0x0D })
    else { return false }
    switch name {
    case "connection", "transfer-encoding", "proxy-connection", "keep-alive", "upgrade": return false
    default: return true
    }
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
    !value.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F })
  }
}
