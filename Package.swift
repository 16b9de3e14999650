// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "dinov2-swift",
    products: [
        .library(name: "DinoCompute", targets: ["DinoCompute"]),
        .library(name: "DinoModel", targets: ["DinoModel"]),
        .library(name: "DinoTensor", targets: ["DinoTensor"]),
        .library(name: "DinoImage", targets: ["DinoImage"]),
        .library(name: "DinoHub", targets: ["DinoHub"]),
        .library(name: "DinoLayers", targets: ["DinoLayers"]),
        .library(name: "DinoSegmentation", targets: ["DinoSegmentation"]),
        .library(name: "DinoDepth", targets: ["DinoDepth"]),
        .library(name: "DinoDiscovery", targets: ["DinoDiscovery"]),
        .library(name: "DinoDataset", targets: ["DinoDataset"]),
        .library(name: "DinoPipeline", targets: ["DinoPipeline"]),
        .executable(name: "dino", targets: ["DinoCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation` for the DocC catalogues (DinoModel, DinoPipeline).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // Hot loops: portable C with AVX2+FMA versions chosen at run time.
        .target(name: "CDinoKernels", path: "Sources/CDinoKernels"),
        // Debian's libopenblas-dev (sgemm).
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        // Debian's zlib1g-dev: raw DEFLATE and CRC-32 for `.pth` zip members.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // extern "C" bridge to OpenCV's codecs; links only core, imgproc and imgcodecs.
        // opencv-headers/opencv2 links to Debian's /usr/include/opencv4/opencv2, so no
        // pkg-config (which would link all OpenCV libraries) and no unsafe flags are needed.
        .target(
            name: "COpenCVBridge", path: "Sources/COpenCVBridge", exclude: ["opencv-headers"],
            cxxSettings: [.headerSearchPath("opencv-headers")],
            // libpng and libjpeg directly too: the bridge replaces their stderr printing (bridge.cpp).
            linkerSettings: [.linkedLibrary("opencv_core"), .linkedLibrary("opencv_imgproc"), .linkedLibrary("opencv_imgcodecs"),
                             .linkedLibrary("png16"), .linkedLibrary("jpeg")]),
        // Compute threads (the parallel regions every layer runs in) and process-wide limits.
        .target(name: "DinoCompute", dependencies: ["CDinoKernels", "COpenBLAS"], path: "Sources/DinoCompute"),
        // Float tensors and the files that hold them: safetensors, .npy, and `torch.save` `.pth`
        // archives (a strict zip reader over a memory mapping; zlib inflates and checks CRC-32).
        .target(name: "DinoTensor", dependencies: ["CDinoKernels", "CZlib"], path: "Sources/DinoTensor"),
        // Configuration, checkpoint loading, the ViT forward pass and the backbone view.
        .target(
            name: "DinoModel", dependencies: ["DinoCompute", "DinoTensor", "CDinoKernels", "COpenBLAS"],
            path: "Sources/DinoModel"),
        // Image decoding/encoding (through the OpenCV bridge), preprocessing presets, pictures.
        .target(
            name: "DinoImage", dependencies: ["COpenCVBridge", "COpenBLAS", "DinoTensor", "CDinoKernels"],
            path: "Sources/DinoImage"),
        // Hugging Face hub ids: the standard cache layout and resumable downloads verified by
        // SHA-256 (swift-crypto), and the streaming file hash every other caller uses too.
        .target(
            name: "DinoHub", dependencies: ["DinoTensor", .product(name: "Crypto", package: "swift-crypto")],
            path: "Sources/DinoHub"),
        // Generic layers for dense heads (convolutions, transposed convolutions, batch norm,
        // bilinear resizing; im2col + OpenBLAS GEMM), and opening and strictly reading head checkpoints.
        .target(name: "DinoLayers", dependencies: ["DinoCompute", "DinoTensor", "CDinoKernels", "COpenBLAS"], path: "Sources/DinoLayers"),
        // Image heads for the tools: a DenseHead bound to its backbone, loaded from an argument,
        // writing its files per image; several share one pass per batch.
        .target(name: "DinoPipeline", dependencies: ["DinoModel", "DinoTensor", "DinoImage"], path: "Sources/DinoPipeline"),
        // Heads: one target per family, consuming the backbone's feature value.
        .target(
            name: "DinoSegmentation", dependencies: ["DinoModel", "DinoPipeline", "DinoTensor", "DinoLayers", "DinoImage"],
            path: "Heads/DinoSegmentation"),
        .target(
            name: "DinoDepth", dependencies: ["DinoModel", "DinoPipeline", "DinoTensor", "DinoLayers", "DinoImage"],
            path: "Heads/DinoDepth"),
        .target(
            name: "DinoDiscovery", dependencies: ["DinoModel", "DinoPipeline", "DinoTensor", "DinoImage", "COpenBLAS"],
            path: "Heads/DinoDiscovery"),
        // Dataset-scale inputs: file lists, folders, WebDataset tar shards, sharding, manifests.
        .target(name: "DinoDataset", dependencies: ["DinoTensor", "DinoImage"], path: "Sources/DinoDataset"),
        // The `dino` command-line tool.
        .executableTarget(
            name: "DinoCLI",
            dependencies: [
                "DinoCompute", "DinoModel", "DinoTensor", "DinoImage", "DinoHub", "DinoPipeline", "DinoSegmentation", "DinoDepth",
                "DinoDiscovery", "DinoDataset",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/DinoCLI"),
        .executableTarget(name: "BackboneFeatures", dependencies: ["DinoModel", "DinoTensor"], path: "Examples/BackboneFeatures"),
        .executableTarget(
            name: "ImageFeatures", dependencies: ["DinoModel", "DinoTensor", "DinoImage"], path: "Examples/ImageFeatures"),
        .executableTarget(name: "DepthEstimation", dependencies: ["DinoDepth", "DinoModel", "DinoTensor", "DinoImage"], path: "Examples/DepthEstimation"),
        .executableTarget(name: "ObjectDiscovery", dependencies: ["DinoDiscovery", "DinoModel", "DinoTensor", "DinoImage"], path: "Examples/ObjectDiscovery"),
        .executableTarget(
            name: "PatchClustering", dependencies: ["DinoPipeline", "DinoDiscovery", "DinoModel", "DinoTensor", "DinoImage"],
            path: "Examples/PatchClustering"),
        .executableTarget(name: "SegmentationProbe", dependencies: ["DinoSegmentation", "DinoModel", "DinoTensor", "DinoImage"], path: "Examples/SegmentationProbe"),

        .testTarget(name: "DinoKernelsTests", dependencies: ["CDinoKernels"], path: "Tests/DinoKernelsTests"),
        .testTarget(name: "DinoComputeTests", dependencies: ["DinoCompute"], path: "Tests/DinoComputeTests"),
        .testTarget(name: "DinoTensorTests", dependencies: ["DinoTensor"], path: "Tests/DinoTensorTests", exclude: ["Fixtures"]),
        .testTarget(
            name: "DinoImageTests", dependencies: ["DinoImage", "DinoTensor"], path: "Tests/DinoImageTests",
            exclude: ["Fixtures"]),
        .testTarget(name: "DinoHubTests", dependencies: ["DinoHub"], path: "Tests/DinoHubTests"),
        .testTarget(name: "DinoDatasetTests", dependencies: ["DinoDataset", "DinoTensor", "DinoImage"], path: "Tests/DinoDatasetTests"),
        .testTarget(
            name: "DinoLayersTests", dependencies: ["DinoLayers", "DinoTensor"], path: "Tests/DinoLayersTests",
            exclude: ["Fixtures"]),
        .testTarget(
            name: "DinoSegmentationTests", dependencies: ["DinoSegmentation", "DinoModel", "DinoTensor", "DinoLayers", "DinoImage"],
            path: "Tests/DinoSegmentationTests", exclude: ["Fixtures"]),
        .testTarget(
            name: "DinoDepthTests", dependencies: ["DinoDepth", "DinoModel", "DinoTensor", "DinoLayers", "DinoImage"],
            path: "Tests/DinoDepthTests", exclude: ["Fixtures"]),
        .testTarget(
            name: "DinoDiscoveryTests", dependencies: ["DinoDiscovery", "DinoModel", "DinoTensor", "DinoImage"],
            path: "Tests/DinoDiscoveryTests", exclude: ["Fixtures"]),
        .testTarget(
            name: "DinoModelTests", dependencies: ["DinoModel", "DinoCompute", "DinoTensor"], path: "Tests/DinoModelTests",
            exclude: ["Fixtures"]),
        // The examples run as executables (the dependency makes `swift test` build them).
        .testTarget(name: "ExampleTests", dependencies: ["PatchClustering"], path: "Tests/ExampleTests"),
        // End-to-end tests run the built `dino` binary (the dependency makes `swift test` build it).
        .testTarget(
            name: "DinoCLITests", dependencies: ["DinoTensor", "DinoImage", "DinoCLI"], path: "Tests/DinoCLITests",
            exclude: ["BadInputs"]),
    ]
)
