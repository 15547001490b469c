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
      // A release build is linked at a fixed address, as Go's binaries are: no relocations for
      // the loader at each cold start (a fifth faster, ~2 MB less resident). Remove this line
      // for a position-independent executable (address-space randomisation of its code too).
      linkerSettings: [.unsafeFlags(["-Xclang-linker", "-no-pie"], .when(configuration: .release))]
    ),
    .testTarget(
      name: "FunctionTests",
      dependencies: ["Function", .product(name: "WatcherTesting", package: "swift-openfx-watcher")],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
  ]
)
