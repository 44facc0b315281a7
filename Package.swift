// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Upshift",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "upshift", targets: ["upshift"]),
        .library(name: "Kafka", targets: ["Kafka"]),
        .library(name: "UpshiftCore", targets: ["UpshiftCore"]),
        .library(name: "UpshiftRuntime", targets: ["UpshiftRuntime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(name: "Kafka", dependencies: ["CRdKafka"]),
        .target(
            name: "UpshiftRuntime",
            dependencies: [
                "Kafka",
                "UpshiftCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "UpshiftCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .executableTarget(
            name: "upshift",
            dependencies: [
                "Kafka",
                "UpshiftCore",
                "UpshiftRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "KafkaThroughput",
            dependencies: ["Kafka"],
            path: "Benchmarks/KafkaThroughput"
        ),
        .executableTarget(
            name: "EngineThroughput",
            dependencies: ["UpshiftCore"],
            path: "Benchmarks/EngineThroughput"
        ),
        .executableTarget(
            name: "StreamThroughput",
            dependencies: ["Kafka", "UpshiftCore", "UpshiftRuntime"],
            path: "Benchmarks/StreamThroughput"
        ),
        .executableTarget(
            name: "HotPaths",
            dependencies: ["Kafka", "UpshiftCore", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka"]),
        .testTarget(name: "UpshiftCoreTests", dependencies: ["UpshiftCore"]),
        .testTarget(
            name: "UpshiftRuntimeTests",
            dependencies: [
                "UpshiftRuntime", "UpshiftCore", "Kafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
