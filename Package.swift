// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "dinov2-swift",
    products: [
        .library(name: "DinoModel", targets: ["DinoModel"]),
        .library(name: "DinoTensor", targets: ["DinoTensor"]),
        .executable(name: "dino", targets: ["DinoCLI"]),
        .executable(name: "dino-bench", targets: ["DinoBenchmarks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Hot loops: portable C with AVX-512 versions chosen at run time.
        .target(name: "CDinoKernels", path: "Sources/CDinoKernels"),
        // Debian's libopenblas-dev (sgemm).
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        // Float tensors, safetensors and .npy files.
        .target(name: "DinoTensor", dependencies: ["CDinoKernels"], path: "Sources/DinoTensor"),
        // Configuration, checkpoint loading, the ViT forward pass and the backbone view.
        .target(
            name: "DinoModel", dependencies: ["DinoTensor", "CDinoKernels", "COpenBLAS"],
            path: "Sources/DinoModel"),
        // The `dino` command-line tool.
        .executableTarget(
            name: "DinoCLI",
            dependencies: [
                "DinoModel", "DinoTensor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/DinoCLI"),
        .executableTarget(
            name: "DinoBenchmarks",
            dependencies: [
                "DinoModel", "DinoTensor", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/DinoBenchmarks"),
        .executableTarget(name: "BackboneFeatures", dependencies: ["DinoModel", "DinoTensor"], path: "Examples/BackboneFeatures"),

        .testTarget(name: "DinoKernelsTests", dependencies: ["CDinoKernels"], path: "Tests/DinoKernelsTests"),
        .testTarget(name: "DinoTensorTests", dependencies: ["DinoTensor"], path: "Tests/DinoTensorTests"),
        .testTarget(
            name: "DinoModelTests", dependencies: ["DinoModel", "DinoTensor"], path: "Tests/DinoModelTests",
            exclude: ["Fixtures"]),
        // End-to-end tests run the built `dino` binary (the dependency makes `swift test` build it).
        .testTarget(
            name: "DinoCLITests", dependencies: ["DinoTensor", "DinoCLI"], path: "Tests/DinoCLITests"),
    ]
)
