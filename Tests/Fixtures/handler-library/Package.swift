// swift-tools-version:6.1
import PackageDescription

// Handler libraries for the HANDLER_FILE tests (Tests/e2e/test_handler_file.py), built as a
// function author builds one: a package of its own whose dynamic library depends on the
// watcher's HandlerKitShared product. The tests place it next to a checkout named
// swift-openfx-watcher.
let package = Package(
  name: "handler-library",
  products: [
    .library(name: "Greeter", type: .dynamic, targets: ["Greeter"]),
    .library(name: "FutureInterface", type: .dynamic, targets: ["FutureInterface"]),
    .library(name: "NoEntryPoint", type: .dynamic, targets: ["NoEntryPoint"]),
  ],
  dependencies: [.package(path: "../swift-openfx-watcher")],
  targets: [
    .target(
      name: "Greeter",
      dependencies: [.product(name: "HandlerKitShared", package: "swift-openfx-watcher")],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .target(name: "FutureInterface", swiftSettings: [.swiftLanguageMode(.v6)]),
    .target(name: "NoEntryPoint", swiftSettings: [.swiftLanguageMode(.v6)]),
  ]
)
