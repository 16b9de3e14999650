import DinoLayers
import DinoModel
import DinoTensor
import Foundation

// Dimension letters: B batch, C head input channels (all layers together), K classes,
// h x w the patch grid of the first feature map, H x W pixels.

/// What a head was trained for and on: its classes, which backbone blocks feed it and how
/// images were prepared. Stored as metadata in head files.
public struct SegmentationHeadConfiguration: Sendable, Equatable {
    /// The backbone blocks whose outputs are concatenated: `.last(1)` is dinov2's "linear"
    /// head, `.last(4)` its "ms" head.
    public var layers: LayerSelection
    /// One name per class; the count is the number of classes `K`.
    public var classNames: [String]
    /// The backbone the head was trained on (hub id or folder), when known.
    public var backbone: String?
    /// How images were prepared (`InputPolicy` text such as `resize:448`), when known.
    public var inputPolicy: String?
    /// Whether the head's dataset stores label 0 as "other" (ADE20K): such masks are read with
    /// 0 -> ignore and every other label shifted down by one.
    public var reduceZeroLabel: Bool
    /// Free-form provenance (training settings, final loss...), kept in the head file.
    public var notes: [String: String]

    /// A configuration from its parts.
    public init(layers: LayerSelection, classNames: [String], backbone: String? = nil, inputPolicy: String? = nil,
                reduceZeroLabel: Bool = false, notes: [String: String] = [:]) {
        self.layers = layers
        self.classNames = classNames
        self.backbone = backbone
        self.inputPolicy = inputPolicy
        self.reduceZeroLabel = reduceZeroLabel
        self.notes = notes
    }

    /// Number of classes `K`.
    public var numClasses: Int { classNames.count }
}

/// The dinov2 linear segmentation head (`BNHead`): feature maps resized to the first one's
/// size and concatenated on channels, BatchNorm, then a 1x1 convolution to class logits.
///
/// ref: dinov2/eval/segmentation/models/decode_heads/linear_head.py (`BNHead`,
/// `input_transform="resize_concat"`, `align_corners=False`, no dropout) and mmseg's
/// `BaseDecodeHead.cls_seg` (`conv_seg`, a 1x1 `nn.Conv2d`). The released heads take no CLS
/// token: the dinov2 notebook calls `get_intermediate_layers(n, reshape=True)` without
/// `return_class_token`, and `in_channels` is the embedding size (x4 for "ms").
public struct SegmentationHead: Sendable {
    /// Classes, layers and provenance.
    public var configuration: SegmentationHeadConfiguration
    /// BatchNorm scale `[C]`.
    public var batchNormWeight: [Float]
    /// BatchNorm shift `[C]`.
    public var batchNormBias: [Float]
    /// BatchNorm running mean `[C]`.
    public var runningMean: [Float]
    /// BatchNorm running variance `[C]`.
    public var runningVariance: [Float]
    /// Batches the running statistics have seen (PyTorch's `num_batches_tracked`).
    public var batchesTracked: Int
    /// BatchNorm epsilon (PyTorch's default).
    public var epsilon: Float = 1e-5
    /// 1x1 convolution weight `[K, C]` (row-major; `[K, C, 1, 1]` in PyTorch).
    public var classifierWeight: [Float]
    /// 1x1 convolution bias `[K]`.
    public var classifierBias: [Float]

    /// Input channels `C`.
    public var channels: Int { batchNormWeight.count }
    /// Classes `K`.
    public var numClasses: Int { classifierBias.count }

    /// A head from its parameters; every BatchNorm vector must have `C` values, the weight
    /// `K * C` and the bias `K` with `K` the number of class names.
    public init(configuration: SegmentationHeadConfiguration, batchNormWeight: [Float], batchNormBias: [Float],
                runningMean: [Float], runningVariance: [Float], batchesTracked: Int = 0,
                classifierWeight: [Float], classifierBias: [Float]) throws(SegmentationError) {
        let c = batchNormWeight.count, k = configuration.numClasses
        guard c > 0, k > 0 else {
            throw .invalidSetting(name: "head", reason: "needs at least one channel and one class, got \(c) channels and \(k) classes")
        }
        guard k <= 255 else {
            throw .invalidSetting(name: "head", reason: "has \(k) classes; label maps are 8-bit with 255 reserved for ignored pixels, so at most 255")
        }
        for (name, values) in [("bn.bias", batchNormBias), ("bn.running_mean", runningMean), ("bn.running_var", runningVariance)]
        where values.count != c {
            throw .shapeMismatch(key: name, file: "head", expected: [c], actual: [values.count])
        }
        guard classifierWeight.count == k * c else {
            throw .shapeMismatch(key: "conv_seg.weight", file: "head", expected: [k, c, 1, 1], actual: [classifierWeight.count])
        }
        guard classifierBias.count == k else {
            throw .shapeMismatch(key: "conv_seg.bias", file: "head", expected: [k], actual: [classifierBias.count])
        }
        self.configuration = configuration
        self.batchNormWeight = batchNormWeight
        self.batchNormBias = batchNormBias
        self.runningMean = runningMean
        self.runningVariance = runningVariance
        self.batchesTracked = batchesTracked
        self.classifierWeight = classifierWeight
        self.classifierBias = classifierBias
    }

    /// A fresh head for `channels` input channels, initialised as mmseg initialises one:
    /// BatchNorm weight 1, bias 0, running mean 0, variance 1; conv weight `N(0, 0.01²)`, bias 0.
    ///
    /// ref: mmseg `BaseDecodeHead.init_weights` (`normal_init(self.conv_seg, mean=0, std=0.01)`).
    public init(configuration: SegmentationHeadConfiguration, channels: Int, seed: UInt64) throws(SegmentationError) {
        var random = SeededRandom(seed: seed)
        let k = configuration.numClasses
        try self.init(
            configuration: configuration,
            batchNormWeight: [Float](repeating: 1, count: channels), batchNormBias: [Float](repeating: 0, count: channels),
            runningMean: [Float](repeating: 0, count: channels), runningVariance: [Float](repeating: 1, count: channels),
            classifierWeight: (0..<(k * max(channels, 0))).map { _ in Float(random.normal() * 0.01) },
            classifierBias: [Float](repeating: 0, count: k))
    }

    /// The head input: each map `[B, C_i, h_i, w_i]` bilinearly resized (align_corners False)
    /// to the first map's size, then all concatenated on channels: `[B, C, h, w]`.
    public func concatenate(_ maps: [Tensor]) throws(SegmentationError) -> Tensor {
        guard let first = maps.first, first.rank == 4 else {
            throw .invalidSetting(name: "head input", reason: "needs at least one [B, C, h, w] feature map")
        }
        let (h, w) = (first.shape[2], first.shape[3])
        var resized: [Tensor] = []
        for map in maps {
            guard map.rank == 4, map.shape[0] == first.shape[0] else {
                throw .sizeMismatch(what: "head input feature map", expected: "[\(first.shape[0]), C, h, w]", actual: "\(map.shape)")
            }
            resized.append(resizeBilinear(map, height: h, width: w, alignCorners: false))
        }
        let x = resized.count == 1 ? resized[0] : concatenateChannels(resized)
        guard x.shape[1] == channels else {
            throw .sizeMismatch(what: "head input channels", expected: "\(channels)", actual: "\(x.shape[1])")
        }
        return x
    }

    /// Logits at the first map's grid, `[B, K, h, w]`.
    public func callAsFunction(_ maps: [Tensor]) throws(SegmentationError) -> Tensor {
        try classify(concatenate(maps))
    }

    /// BatchNorm (running statistics) then the 1x1 convolution of a concatenated input
    /// `[B, C, h, w]` -> `[B, K, h, w]`.
    public func classify(_ x: Tensor) throws(SegmentationError) -> Tensor {
        do {
            let norm = try BatchNorm2d(
                weight: Tensor(shape: [channels], scalars: batchNormWeight), bias: Tensor(shape: [channels], scalars: batchNormBias),
                runningMean: Tensor(shape: [channels], scalars: runningMean),
                runningVar: Tensor(shape: [channels], scalars: runningVariance), eps: epsilon, name: "decode_head.bn")
            return try classifier()(norm(x))
        } catch {
            throw .layer(error)
        }
    }

    /// Logits bilinearly upsampled (align_corners False) to `height x width`: `[B, K, H, W]`.
    public func logits(_ maps: [Tensor], height: Int, width: Int) throws(SegmentationError) -> Tensor {
        resizeBilinear(try self(maps), height: height, width: width, alignCorners: false)
    }

    /// The 1x1 convolution as a layer.
    func classifier() throws(LayerError) -> Conv2d {
        try Conv2d(weight: Tensor(shape: [numClasses, channels, 1, 1], scalars: classifierWeight),
                   bias: Tensor(shape: [numClasses], scalars: classifierBias), name: "decode_head.conv_seg")
    }
}

/// A small deterministic generator (SplitMix64) for initialisation and shuffling, so that one
/// seed gives one head on every machine.
struct SeededRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Standard normal (Box-Muller).
    mutating func normal() -> Double {
        let u = max(uniform(), 0x1.0p-53), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }

    /// Uniform in `0..<bound`.
    mutating func index(below bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// `items` in a random order (Fisher-Yates).
    mutating func shuffled<T>(_ items: [T]) -> [T] {
        var out = items
        guard out.count > 1 else { return out }
        for i in stride(from: out.count - 1, to: 0, by: -1) {
            out.swapAt(i, index(below: i + 1))
        }
        return out
    }
}
