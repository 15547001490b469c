// swift-tools-version:6.1
import PackageDescription

// The Swift watcher: from its repository, or from a local checkout named by FXWATCHER_PACKAGE
// (a folder called swift-openfx-watcher).
let watcherPackage: Package.Dependency =
  if let path = Context.environment["FXWATCHER_PACKAGE"], !path.isEmpty {
    .package(path: path)
  } else {
    .package(url: "https://github.com/keti-openfx/swift-openfx-watcher.git", from: "0.1.0")
  }

let package = Package(
  name: "function",
  platforms: [.macOS(.v15)],
  dependencies: [watcherPackage],
  targets: [
    .executableTarget(
      name: "Function",
      dependencies: [
        .product(name: "HandlerKit", package: "swift-openfx-watcher"),
        .product(name: "Watcher", package: "swift-openfx-watcher"),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)],
      // A release build starts faster and smaller: linked at a fixed address, as Go's binaries
      // are, the loader has no relocations to apply (remove "-no-pie" for a position-independent
      // executable, whose code address-space randomisation moves too); without exporting its
      // 40,000 symbols (which the static Swift runtime's flags ask for, and only a stripped
      // binary's crash reports next to swift-backtrace would use), the runtime's start-up dladdr
      // does not search them. Together: 7.0 -> 5.0 ms to the lock file, 4 MB less resident.
      linkerSettings: [
        .unsafeFlags(["-Xclang-linker", "-no-pie", "-Xlinker", "--no-export-dynamic"], .when(configuration: .release))
      ]
    ),
    .testTarget(
      name: "FunctionTests",
      dependencies: ["Function", .product(name: "WatcherTesting", package: "swift-openfx-watcher")],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
  ]
)
