// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
  .swiftLanguageMode(.v6),
  .enableUpcomingFeature("ExistentialAny"),
]

/// A release executable is linked at a fixed address (not position-independent), as Go links
/// its binaries: the loader then has none of a PIE's ~140,000 relocations to apply at each
/// start, which made a cold start ~1.3 ms (a fifth) faster and left ~2 MB less resident. The
/// cost is that the watcher's own code is not moved by address-space randomisation (shared
/// libraries, heap and stacks still are); drop this setting for a PIE.
let fixedAddressRelease = LinkerSetting.unsafeFlags(["-Xclang-linker", "-no-pie"], .when(configuration: .release))

let package = Package(
  name: "swift-openfx-watcher",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "HandlerKit", targets: ["HandlerKit"]),
    // HandlerKit as a shared library: what a handler library (HANDLER_FILE) links against, so
    // that loaded into fxwatcher it uses the watcher's HandlerKit types.
    .library(name: "HandlerKitShared", type: .dynamic, targets: ["HandlerKit"]),
    .library(name: "Watcher", targets: ["Watcher"]),
    .library(name: "FxWatcherMessages", targets: ["FxWatcherMessages"]),
    .library(name: "FxWatcherProto", targets: ["FxWatcherProto"]),
    .library(name: "Examples", targets: ["Examples"]),
    .library(name: "MQTT", targets: ["MQTT"]),
    .library(name: "WatcherTesting", targets: ["WatcherTesting"]),
    .executable(name: "fxwatcher", targets: ["fxwatcher"]),
    .executable(name: "fxmqtt-bridge", targets: ["fxmqtt-bridge"]),
    .executable(name: "fximage", targets: ["fximage"]),
  ],
  dependencies: [
    .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
    // Without its default traits: `BinaryDelimitedStreams` imports all of Foundation (and its
    // ICU data) into every function's binary; nothing here uses it or `FieldMaskUtilities`.
    .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0", traits: []),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    .package(url: "https://github.com/weichsel/ZIPFoundation.git", from: "0.9.20"),
  ],
  targets: [
    // What a function author imports: no gRPC, no NIO.
    .target(
      name: "HandlerKit",
      dependencies: [.product(name: "Logging", package: "swift-log")],
      swiftSettings: swiftSettings
    ),
    // Generated from Protos/ by scripts/generate-protos.sh; committed. The messages alone: what
    // the watcher needs, without gRPC's libraries.
    .target(
      name: "FxWatcherMessages",
      dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
      swiftSettings: swiftSettings
    ),
    // The services' grpc-swift-2 clients and servers, for the tests, the test kit and the
    // bridge; exports the messages too.
    .target(
      name: "FxWatcherProto",
      dependencies: [
        "FxWatcherMessages",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: swiftSettings
    ),
    // Parsing of settings shared by the watcher and the MQTT bridge: durations, sizes, ports.
    .target(name: "SettingValues", swiftSettings: swiftSettings),
    // The runtime: configuration, invocation pipeline, gRPC servers, lock file, lifecycle.
    .target(
      name: "Watcher",
      dependencies: [
        "HandlerKit",
        "FxWatcherMessages",
        "SettingValues",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
        .product(name: "NIOHPACK", package: "swift-nio-http2"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
      ],
      swiftSettings: swiftSettings
    ),
    // What function authors test handlers with: in-process, and against a real watcher.
    .target(
      name: "WatcherTesting",
      dependencies: [
        "Watcher",
        "HandlerKit",
        "FxWatcherProto",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    // MQTT 3.1.1 on SwiftNIO: the packet codec and a client that stays connected.
    .target(
      name: "MQTT",
      dependencies: [
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),
    // The MQTT bridge: subscribes to a topic and passes each message to a function over gRPC.
    .target(
      name: "MQTTBridge",
      dependencies: [
        "MQTT",
        "FxWatcherProto",
        "SettingValues",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
      ],
      swiftSettings: swiftSettings
    ),
    .executableTarget(
      name: "fxmqtt-bridge",
      dependencies: [
        "MQTTBridge",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    // libxml2's HTML parser (Debian: libxml2-dev), for the crawler example.
    .systemLibrary(
      name: "CLibXML2",
      pkgConfig: "libxml-2.0",
      providers: [.apt(["libxml2-dev"])]
    ),
    // The crawler's HTML side: libxml2 without Foundation (their ICU headers clash).
    .target(
      name: "HTMLLinks",
      dependencies: ["CLibXML2"],
      swiftSettings: swiftSettings
    ),
    // libjpeg-turbo's TurboJPEG API (Debian: libturbojpeg0-dev), for the image example.
    .systemLibrary(
      name: "CTurboJPEG",
      pkgConfig: "libturbojpeg",
      providers: [.apt(["libturbojpeg0-dev"])]
    ),
    // libpng (Debian: libpng-dev), for the image example.
    .systemLibrary(
      name: "CLibPNG",
      pkgConfig: "libpng",
      providers: [.apt(["libpng-dev"])]
    ),
    // libjpeg-turbo's libjpeg API (Debian: libjpeg62-turbo-dev), for row-by-row JPEG work.
    .systemLibrary(
      name: "CLibJPEG",
      pkgConfig: "libjpeg",
      providers: [.apt(["libjpeg62-turbo-dev"])]
    ),
    // JPEG rows with libjpeg's API, which needs setjmp for its errors: C.
    .target(
      name: "CJPEGRows",
      dependencies: ["CLibJPEG"]
    ),
    // One HTTP GET with libcurl (Debian: libcurl4-openssl-dev to build, libcurl4 to run), loaded
    // with dlopen on first use: a watcher that does not crawl loads none of libcurl's libraries.
    .target(name: "CCurlFetch"),
    // The crawler's fetch over CCurlFetch: a target apart from the crawler's, whose libxml2
    // (system ICU) and Foundation (its own ICU) clash in one compile with more C modules.
    .target(
      name: "PageFetch",
      dependencies: ["CCurlFetch", "HandlerKit"],
      swiftSettings: swiftSettings
    ),
    // PNG reading with libpng's classic API, which needs setjmp: C.
    .target(
      name: "CPNGReader",
      dependencies: ["CLibPNG"]
    ),
    // JPEG/PNG decoding and JPEG encoding as OpenCV does them, and the image operations.
    .target(
      name: "Imaging",
      dependencies: ["CTurboJPEG", "CPNGReader", "CJPEGRows"],
      swiftSettings: swiftSettings
    ),
    // Spark's libsvm loading and randomSplit, MLeap bundles and the MLP, for the pyspark example.
    .target(
      name: "SparkML",
      dependencies: [
        .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: swiftSettings
    ),
    // The example handlers of the OpenFx workshop: HandlerKit and C libraries only.
    .target(
      name: "Examples",
      dependencies: ["HandlerKit", "PageFetch", "HTMLLinks", "Imaging", "SparkML"],
      exclude: ["Sentiment/LEXICON-NOTICE.md"],
      resources: [.copy("Sentiment/en-sentiment.xml"), .copy("Spark")],
      swiftSettings: swiftSettings
    ),
    // Times a compiled-in handler in-process (Benchmarks/).
    .executableTarget(
      name: "handler-bench",
      dependencies: ["Examples", "HandlerKit"],
      swiftSettings: swiftSettings
    ),
    // The image example's tool: streams frames through a watcher, decodes, times.
    .executableTarget(
      name: "fximage",
      dependencies: [
        "Imaging",
        "Examples",
        "HandlerKit",
        "FxWatcherProto",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: swiftSettings
    ),
    .executableTarget(
      name: "fxwatcher",
      dependencies: ["Watcher", "Examples"],
      swiftSettings: swiftSettings,
      linkerSettings: [
        // Exports HandlerKit's symbols so a handler library loaded by HANDLER_FILE binds to them.
        .unsafeFlags(["-Xlinker", "--export-dynamic"]),
        fixedAddressRelease,
      ]
    ),
    .testTarget(
      name: "HandlerKitTests",
      dependencies: ["HandlerKit"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "WatcherTests",
      dependencies: [
        "Watcher",
        "HandlerKit",
        "FxWatcherProto",
        "SettingValues",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
        .product(name: "NIOHPACK", package: "swift-nio-http2"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "WatcherTestingTests",
      dependencies: ["WatcherTesting", "Examples", "HandlerKit", "FxWatcherProto", "Watcher"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "MQTTTests",
      dependencies: ["MQTT", .product(name: "NIOCore", package: "swift-nio")],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "MQTTBridgeTests",
      dependencies: ["MQTTBridge", "MQTT", .product(name: "GRPCCore", package: "grpc-swift-2")],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "ImagingTests",
      dependencies: ["Imaging"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "SparkMLTests",
      dependencies: [
        "SparkML",
        .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "ExamplesTests",
      dependencies: ["Examples", "HandlerKit", "HTMLLinks", "Imaging"],
      swiftSettings: swiftSettings
    ),
  ]
)
