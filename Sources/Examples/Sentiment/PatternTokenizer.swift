/// Pattern's `find_tokens` as TextBlob 0.20.1 runs it, then the lower-cased word stream its
/// sentiment scorer reads (`" ".join(find_tokens(s)).split()`, each word lower-cased).
enum PatternTokenizer {
  static let endOfSentence = "END-OF-SENTENCE"
  private static let endOfSentenceScalars = Array(endOfSentence.unicodeScalars)
  /// Pattern's `PUNCTUATION`.
  private static let punctuationCharacters = ".,;:!?()[]{}`''\"@#$^&*+-|=~_"
  /// ``isPunctuation(_:)`` by ASCII value (every punctuation character is ASCII).
  private static let isASCIIPunctuation: [Bool] = (0..<128).map { value in
    value != 0x2E && punctuationCharacters.unicodeScalars.contains(Unicode.Scalar(UInt8(value)))
  }
  /// Whether `scalar` is punctuation split off words: Pattern's `PUNCTUATION` without the
  /// period, which is handled apart.
  static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
    scalar.isASCII && isASCIIPunctuation[Int(scalar.value)]
  }
  /// Every substring of Pattern's punctuation string, for Python's test `w not in PUNCTUATION`.
  static let punctuationSubstrings: Set<String> = {
    let scalars = Array(punctuationCharacters.unicodeScalars)
    var substrings: Set<String> = [""]
    for start in scalars.indices {
      for end in start..<scalars.count {
        substrings.insert(String(String.UnicodeScalarView(scalars[start...end])))
      }
    }
    return substrings
  }()
  static let contractions: [(String, String)] = [
    ("'d", " 'd"), ("'m", " 'm"), ("'s", " 's"), ("'ll", " 'll"), ("'re", " 're"), ("'ve", " 've"), ("n't", " n't"),
  ]
  static let abbreviations: Set<String> = [
    "a.", "adj.", "adv.", "al.", "a.m.", "c.", "cf.", "comp.", "conf.", "def.", "ed.", "e.g.", "esp.", "etc.", "ex.",
    "f.", "fig.", "gen.", "id.", "i.e.", "int.", "l.", "m.", "Med.", "Mil.", "Mr.", "n.", "n.q.", "orig.", "pl.",
    "pred.", "pres.", "p.m.", "ref.", "v.", "vs.", "w/",
  ]

  /// The words the scorer sees, lower-cased, sentences flattened.
  static func words(_ text: String) -> [String] {
    var words: [String] = []
    for sentence in sentenceScalars(text) {
      for word in sentence.split(separator: " ") { words.append(lowercasedString(word)) }
    }
    return words
  }

  /// `find_tokens`: sentences of space-separated tokens.
  static func sentences(_ input: String) -> [String] {
    sentenceScalars(input).map { String(scalars: $0) }
  }

  /// `find_tokens`' sentences, as the scalars of their space-separated tokens.
  private static func sentenceScalars(_ input: String) -> [[Unicode.Scalar]] {
    let spaced = collapsingWhitespace(replacingParagraphBreaks(spacingContractionsAndQuotes(Array(input.unicodeScalars))))
    let tokens = splitPunctuation(spaced.split(separator: " "))
    return joinSentences(tokens).map { rejoinEmoticons(rejoinSarcasm($0)) }
  }

  /// Python's `str.lower()` of the word: ASCII letters mapped while encoding, anything else
  /// through `lowercased()`.
  private static func lowercasedString(_ word: ArraySlice<Unicode.Scalar>) -> String {
    guard word.allSatisfy(\.isASCII) else { return String(scalars: word).lowercased() }
    return String(unsafeUninitializedCapacity: word.count) { buffer in
      var count = 0
      for scalar in word {
        let byte = UInt8(truncatingIfNeeded: scalar.value)
        buffer[count] = (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
        count += 1
      }
      return count
    }
  }

  /// The contraction replacements (`"n't"` → `" n't"`, …, each in turn over the whole text, which
  /// comes to one pass: they only insert spaces), then the quotes spaced out (`'` → `" ' "`), then
  /// `"\r\n"` → `"\n"`.
  private static func spacingContractionsAndQuotes(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
    var spaced: [Unicode.Scalar] = []
    spaced.reserveCapacity(scalars.count + scalars.count / 4)
    var index = 0
    while index < scalars.count {
      if startsContraction(scalars, at: index) { spaced.append(" ") }
      spaced.append(scalars[index])
      index += 1
    }
    var quoted: [Unicode.Scalar] = []
    quoted.reserveCapacity(spaced.count + spaced.count / 4)
    index = 0
    while index < spaced.count {
      let scalar = spaced[index]
      switch scalar {
      case "“", "”", "‘", "’", "'", "\"":
        quoted.append(" ")
        quoted.append(scalar)
        quoted.append(" ")
      case "\r" where index + 1 < spaced.count && spaced[index + 1] == "\n":
        break  // the "\n" follows
      default:
        quoted.append(scalar)
      }
      index += 1
    }
    return quoted
  }

  private static let contractionScalars = contractions.map { Array($0.0.unicodeScalars) }

  private static func startsContraction(_ scalars: [Unicode.Scalar], at index: Int) -> Bool {
    let first = scalars[index]
    guard first == "'" || first == "n" else { return false }
    return contractionScalars.contains { pattern in
      index + pattern.count <= scalars.count && scalars[index..<index + pattern.count].elementsEqual(pattern)
    }
  }

  /// `re.sub(r"\n{2,}", " END-OF-SENTENCE ", s)`.
  private static func replacingParagraphBreaks(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
    let marker = Array(" \(endOfSentence) ".unicodeScalars)
    var result: [Unicode.Scalar] = []
    result.reserveCapacity(scalars.count)
    var newlines = 0
    func flush() {
      if newlines >= 2 { result.append(contentsOf: marker) } else if newlines == 1 { result.append("\n") }
      newlines = 0
    }
    for scalar in scalars {
      if scalar == "\n" {
        newlines += 1
      } else {
        flush()
        result.append(scalar)
      }
    }
    flush()
    return result
  }

  /// `re.sub(r"\s+", " ", s)` with Python's Unicode whitespace.
  private static func collapsingWhitespace(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
    var result: [Unicode.Scalar] = []
    result.reserveCapacity(scalars.count)
    var inSpace = false
    for scalar in scalars {
      if isPythonSpace(scalar) {
        if !inSpace { result.append(" ") }
        inSpace = true
      } else {
        result.append(scalar)
        inSpace = false
      }
    }
    return result
  }

  /// Python's `str.isspace()` (and `\s` in a `str` pattern).
  static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: true
    default: false
    }
  }

  /// A token: a slice of the spaced-out text's scalars (no copy until it becomes a word).
  private typealias Token = ArraySlice<Unicode.Scalar>

  /// Leading and trailing punctuation split off each token; periods kept on abbreviations.
  private static func splitPunctuation(_ rawTokens: [Token]) -> [Token] {
    var tokens: [Token] = []
    tokens.reserveCapacity(rawTokens.count + rawTokens.count / 2)
    var tail: [Token] = []
    for var token in rawTokens where !token.isEmpty {
      tail.removeAll(keepingCapacity: true)
      while let first = token.first, isPunctuation(first), !isContraction(token) {
        tokens.append(token.prefix(1))
        token = token.dropFirst()
      }
      while let last = token.last, isPunctuation(last) || last == ".", !isContraction(token) {
        if let last = token.last, isPunctuation(last) {
          tail.append(token.suffix(1))
          token = token.dropLast()
        }
        if token.count >= 3, token.suffix(3).allSatisfy({ $0 == "." }) {
          tail.append(token.suffix(3))
          token = token.dropLast(3)
          while token.last == "." { token = token.dropLast() }
        }
        if token.last == "." {
          if isAbbreviation(String(scalars: token)) { break }
          tail.append(token.suffix(1))
          token = token.dropLast()
        }
      }
      if !token.isEmpty { tokens.append(token) }
      tokens.append(contentsOf: tail.reversed())
    }
    return tokens
  }

  /// Whether `token` is one of the ``contractions`` (`'d`, `'m`, `'s`, `'ll`, `'re`, `'ve`, `n't`).
  private static func isContraction(_ token: Token) -> Bool {
    (2...3).contains(token.count) && contractionScalars.contains { token.elementsEqual($0) }
  }

  static func isAbbreviation(_ token: String) -> Bool {
    if abbreviations.contains(token) { return true }
    let scalars = Array(token.unicodeScalars)
    func isLetter(_ s: Unicode.Scalar) -> Bool { ("A"..."Z").contains(s) || ("a"..."z").contains(s) }
    // ^[A-Za-z]\.$
    if scalars.count == 2, isLetter(scalars[0]), scalars[1] == "." { return true }
    // ^([A-Za-z]\.)+$
    if scalars.count >= 2, scalars.count % 2 == 0,
      stride(from: 0, to: scalars.count, by: 2).allSatisfy({ isLetter(scalars[$0]) && scalars[$0 + 1] == "." })
    {
      return true
    }
    // ^[A-Z][b|c|d|…|z]+.$  (the class holds '|' too; the last character is any but a newline)
    let consonants = Set("bcdfghjklmnpqrstvwxz|".unicodeScalars)
    if scalars.count >= 3, ("A"..."Z").contains(scalars[0]), scalars.last != "\n",
      scalars[1..<(scalars.count - 1)].allSatisfy(consonants.contains)
    {
      return true
    }
    return false
  }

  /// Groups tokens into sentences at `... . ! ?` and paragraph breaks, as `find_tokens` does.
  private static func joinSentences(_ tokens: [Token]) -> [[Unicode.Scalar]] {
    func isSingle(_ token: Token, _ scalar: Unicode.Scalar) -> Bool { token.count == 1 && token.first == scalar }
    func isEndOfSentence(_ token: Token) -> Bool { token.elementsEqual(endOfSentenceScalars) }
    func isEnder(_ token: Token) -> Bool {
      switch token.count {
      case 1: isSingle(token, ".") || isSingle(token, "!") || isSingle(token, "?")
      case 3: token.allSatisfy { $0 == "." }
      default: isEndOfSentence(token)
      }
    }
    func isTrailer(_ token: Token) -> Bool {
      if token.count == 1, let scalar = token.first, "'\"”’)".unicodeScalars.contains(scalar) { return true }
      return isEnder(token)
    }
    var sentences: [[Token]] = [[]]
    var i = 0
    var j = 0
    while j < tokens.count {
      if isEnder(tokens[j]) {
        while j < tokens.count, isTrailer(tokens[j]) {
          if isSingle(tokens[j], "'") || isSingle(tokens[j], "\""),
            sentences[sentences.count - 1].filter({ $0.elementsEqual(tokens[j]) }).count % 2 == 0
          {
            break
          }
          j += 1
        }
        sentences[sentences.count - 1].append(contentsOf: tokens[i..<j].filter { !isEndOfSentence($0) })
        sentences.append([])
        i = j
      }
      j += 1
    }
    sentences[sentences.count - 1].append(contentsOf: tokens[i..<min(j, tokens.count)])
    return sentences.filter { !$0.isEmpty }.map { sentence in
      var scalars: [Unicode.Scalar] = []
      for token in sentence {
        if !scalars.isEmpty { scalars.append(" ") }
        scalars.append(contentsOf: token)
      }
      return scalars
    }
  }

  /// `RE_SARCASM.sub("(!)", s)`: `\( ?\! ?\)`.
  private static func rejoinSarcasm(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
    guard scalars.contains("(") else { return scalars }
    var result: [Unicode.Scalar] = []
    result.reserveCapacity(scalars.count)
    var index = 0
    while index < scalars.count {
      if scalars[index] == "(" {
        var probe = index + 1
        if probe < scalars.count, scalars[probe] == " " { probe += 1 }
        if probe < scalars.count, scalars[probe] == "!" {
          probe += 1
          if probe < scalars.count, scalars[probe] == " " { probe += 1 }
          if probe < scalars.count, scalars[probe] == ")" {
            result.append(contentsOf: ["(", "!", ")"])
            index = probe + 1
            continue
          }
        }
      }
      result.append(scalars[index])
      index += 1
    }
    return result
  }

  /// `RE_EMOTICONS.sub`: an emoticon written with spaces between its characters, followed by a
  /// space or the end, loses the spaces. Where two emoticons could match, the longer wins.
  static func rejoinEmoticons(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
    var result: [Unicode.Scalar] = []
    result.reserveCapacity(scalars.count)
    var index = 0
    while index < scalars.count {
      var best: (end: Int, emoticon: [Unicode.Scalar])?
      if let candidates = Emoticons.starting(with: scalars[index]) {
        for emoticon in candidates {
          guard let end = matchSpaced(emoticon, in: scalars, at: index),
            end == scalars.count || isPythonSpace(scalars[end])
          else { continue }
          if best == nil || end > best!.end { best = (end, emoticon) }
        }
      }
      if let best {
        result.append(contentsOf: best.emoticon)
        index = best.end
      } else {
        result.append(scalars[index])
        index += 1
      }
    }
    return result
  }

  /// Where `emoticon` ends when matched at `start` with an optional space between its characters.
  private static func matchSpaced(_ emoticon: [Unicode.Scalar], in scalars: [Unicode.Scalar], at start: Int) -> Int? {
    var index = start
    for (offset, scalar) in emoticon.enumerated() {
      if offset > 0, index < scalars.count, scalars[index] == " ", index + 1 < scalars.count,
        scalars[index + 1] == scalar
      {
        index += 1
      }
      guard index < scalars.count, scalars[index] == scalar else { return nil }
      index += 1
    }
    return index
  }
}

/// Pattern's emoticons: (mood, polarity) groups in the order TextBlob declares them.
enum Emoticons {
  static let groups: [(polarity: Double, faces: [String])] = [
    (1.00, ["<3", "♥"]),
    (1.00, [">:D", ":-D", ":D", "=-D", "=D", "X-D", "x-D", "XD", "xD", "8-D"]),
    (0.75, [">:P", ":-P", ":P", ":-p", ":p", ":-b", ":b", ":c)", ":o)", ":^)"]),
    (0.50, [">:)", ":-)", ":)", "=)", "=]", ":]", ":}", ":>", ":3", "8)", "8-)"]),
    (0.25, [">;]", ";-)", ";)", ";-]", ";]", ";D", ";^)", "*-)", "*)"]),
    (0.05, [">:o", ":-O", ":O", ":o", ":-o", "o_O", "o.O", "°O°", "°o°"]),
    (-0.25, [">:/", ":-/", ":/", ":\\", ">:\\", ":-.", ":-s", ":s", ":S", ":-S", ">.>"]),
    (-0.75, [">:[", ":-(", ":(", "=(", ":-[", ":[", ":{", ":-<", ":c", ":-c", "=/"]),
    (-1.00, [":'(", ":'''(", ";'("]),
  ]

  /// Every face, by its first character.
  private static let byFirstScalar: [Unicode.Scalar: [[Unicode.Scalar]]] = Dictionary(
    grouping: groups.flatMap { $0.faces.map { Array($0.unicodeScalars) } }, by: { $0[0] })
  /// The same for ASCII first characters, by their value: no hashing for the common case.
  private static let byASCIIFirstScalar: [[[Unicode.Scalar]]?] = (0..<128).map { byFirstScalar[Unicode.Scalar(UInt8($0))] }

  /// The faces that start with `scalar`, or `nil` for none.
  static func starting(with scalar: Unicode.Scalar) -> [[Unicode.Scalar]]? {
    scalar.isASCII ? byASCIIFirstScalar[Int(scalar.value)] : byFirstScalar[scalar]
  }

  /// Lower-cased face → polarity of the first group holding it.
  private static let polarityByLowercasedFace: [String: Double] = {
    var table: [String: Double] = [:]
    for group in groups {
      for face in group.faces where table[face.lowercased()] == nil { table[face.lowercased()] = group.polarity }
    }
    return table
  }()

  /// The polarity of a lower-cased token that is an emoticon (first group in order), else `nil`.
  static func polarity(of word: String) -> Double? {
    polarityByLowercasedFace[word]
  }
}

extension String {
  /// The string of `scalars`, encoded to UTF-8 in one pass (building a `UnicodeScalarView`
  /// appends them one by one, several times slower).
  fileprivate init(scalars: some Collection<Unicode.Scalar>) {
    self.init(unsafeUninitializedCapacity: scalars.count * 4) { buffer in
      var count = 0
      for scalar in scalars {
        if scalar.isASCII {
          buffer[count] = UInt8(truncatingIfNeeded: scalar.value)
          count += 1
        } else {
          UTF8.encode(scalar) { byte in
            buffer[count] = byte
            count += 1
          }
        }
      }
      return count
    }
  }
}
