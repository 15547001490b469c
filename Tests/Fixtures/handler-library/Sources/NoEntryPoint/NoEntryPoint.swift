/// A shared library that is not a handler library.
@_cdecl("answer")
public func answer() -> Int32 { 42 }
