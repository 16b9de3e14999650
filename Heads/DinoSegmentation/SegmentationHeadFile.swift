import DinoLayers
import DinoModel
import DinoTensor
import Foundation

/// Reading and writing linear segmentation heads under the tensor names of the released dinov2
/// heads, with their configuration (classes, layers, input policy) as metadata.
///
/// The released heads (`dinov2_vit*14_{ade20k,voc2012}_{linear,ms}_head.pth`) are mmseg
/// segmentor state dicts holding only the decode head:
/// `decode_head.conv_seg.{weight,bias}` (`[K, C, 1, 1]`, `[K]`) and
/// `decode_head.bn.{weight,bias,running_mean,running_var,num_batches_tracked}` (`[C]`, scalar).
/// Heads this library writes use the same names in a `.safetensors` file and add metadata
/// (classes, layers, backbone, input policy) under `__metadata__`.
public enum SegmentationHeadFile {
    /// The 1x1 convolution weight `[K, C, 1, 1]` (names here are without the `decode_head.` prefix).
    public static let convWeight = "conv_seg.weight"
    /// The 1x1 convolution bias `[K]`.
    public static let convBias = "conv_seg.bias"
    /// BatchNorm scale `[C]`.
    public static let bnWeight = "bn.weight"
    /// BatchNorm shift `[C]`.
    public static let bnBias = "bn.bias"
    /// BatchNorm running mean `[C]`.
    public static let runningMean = "bn.running_mean"
    /// BatchNorm running variance `[C]`.
    public static let runningVariance = "bn.running_var"
    /// BatchNorm batch count (a scalar, int64 in PyTorch files); optional.
    public static let batchesTracked = "bn.num_batches_tracked"
    /// The prefix of the released heads' names.
    public static let prefix = "decode_head."
    /// The value of the `format` metadata entry of heads written here.
    public static let formatName = "dinov2-swift.segmentation-head"

    /// Reads a head from any tensor source (safetensors, a `.pth` reader...).
    ///
    /// The head's tensors are found by the suffix `conv_seg.weight`; whatever precedes it
    /// (`decode_head.`, `state_dict.decode_head.`, or nothing) is the prefix of all of them.
    /// Any other tensor, except under `meta.` / `optimizer.`, is an error: the file is then not
    /// a linear head.
    public static func read(_ source: any TensorSource, file: String,
                            configuration: SegmentationHeadConfiguration) throws(SegmentationError) -> SegmentationHead {
        let weightsOnly = HeadCheckpoint.weights(of: source)
        let roots = HeadCheckpoint.prefixes(of: convWeight, in: weightsOnly)
        guard roots.count == 1, let root = roots.first else {
            if roots.isEmpty { throw .missingTensor(key: prefix + convWeight, file: file) }
            throw .unsupportedHeadFormat(file: file, reason: "holds several heads (\(roots.map { $0 + convWeight }.joined(separator: ", ")))")
        }
        var weights = HeadWeights<SegmentationError>(source: weightsOnly, prefix: root)
        let weight = try weights.take(convWeight, [nil, nil, 1, 1])
        let (k, c) = (weight.shape[0], weight.shape[1])
        guard k == configuration.numClasses else {
            throw .invalidMetadata(file: file, key: "classes",
                                   reason: "names \(configuration.numClasses) classes but \(root + convWeight) has \(k) rows")
        }
        var tracked = 0
        if weights.has(batchesTracked) {
            // A scalar, or a single value.
            let expected: [Int?] = weights.shape(batchesTracked)?.count == 1 ? [1] : []
            tracked = Int(try weights.take(batchesTracked, expected).scalars[0])
        }
        let head = try SegmentationHead(
            configuration: configuration, batchNormWeight: weights.take(bnWeight, [c]).scalars, batchNormBias: weights.take(bnBias, [c]).scalars,
            runningMean: weights.take(runningMean, [c]).scalars, runningVariance: weights.take(runningVariance, [c]).scalars,
            batchesTracked: tracked, classifierWeight: weight.scalars, classifierBias: weights.take(convBias, [k]).scalars)
        try weights.checkAllUsed()
        return head
    }

    /// The configuration of a head file without metadata (the released `.pth` heads), from its
    /// shapes and the backbone's hidden size `D`: `C = D` is the "linear" head (the last
    /// block), `C = 4D` the "ms" head (the last four); 150 classes are ADE20K's (labels read
    /// with `reduce_zero_label`), 21 VOC's.
    ///
    /// ref: the released configs `dinov2_vit*14_ade20k_linear_config.py`: backbone
    /// `out_indices=[8, 9, 10, 11]` (ViT-S/B), `in_index=[3]`, `in_channels=[D]`; the "ms"
    /// configs concatenate all four (`in_channels=[D] * 4`).
    public static func inferredConfiguration(channels: Int, classes: Int, hiddenSize: Int, file: String,
                                             layers: LayerSelection? = nil) throws(SegmentationError) -> SegmentationHeadConfiguration {
        let chosen: LayerSelection
        if let layers {
            chosen = layers
        } else if channels == hiddenSize {
            chosen = .last(1)
        } else if channels == 4 * hiddenSize {
            chosen = .last(4)
        } else {
            throw .incompatibleBackbone(
                head: file, reason: "the head takes \(channels) channels and the backbone's hidden size is \(hiddenSize); "
                    + "it is neither a linear (\(hiddenSize)) nor an ms (\(4 * hiddenSize)) head of this backbone")
        }
        switch classes {
        case DatasetClasses.ade20k.count:
            return SegmentationHeadConfiguration(layers: chosen, classNames: DatasetClasses.ade20k, reduceZeroLabel: true)
        case DatasetClasses.voc.count:
            return SegmentationHeadConfiguration(layers: chosen, classNames: DatasetClasses.voc)
        default:
            return SegmentationHeadConfiguration(layers: chosen, classNames: DatasetClasses.numbered(classes))
        }
    }

    /// Loads a head file: `.safetensors` (with this library's metadata, or none) or a PyTorch
    /// `.pth` state dict. Files without metadata get `inferredConfiguration` for a backbone of
    /// hidden size `hiddenSize`; `layers` overrides the layers either way.
    public static func load(_ url: URL, hiddenSize: Int, layers: LayerSelection? = nil) throws(SegmentationError) -> SegmentationHead {
        let file = url.path
        let source: any TensorSource
        do { source = try HeadCheckpoint.open(url) } catch { throw SegmentationError(error) }
        let metadata = (source as? SafetensorsFile)?.metadata ?? [:]
        var configuration: SegmentationHeadConfiguration
        if metadata["format"] == formatName {
            configuration = try Self.configuration(metadata: metadata, file: file)
            if let layers { configuration.layers = layers }
        } else {
            let shape = try shapeOfClassifier(source, file: file)
            configuration = try inferredConfiguration(channels: shape[1], classes: shape[0], hiddenSize: hiddenSize, file: file, layers: layers)
        }
        return try read(source, file: file, configuration: configuration)
    }

    private static func shapeOfClassifier(_ source: any TensorSource, file: String) throws(SegmentationError) -> [Int] {
        guard let root = HeadCheckpoint.prefixes(of: convWeight, in: source).first else {
            throw .missingTensor(key: prefix + convWeight, file: file)
        }
        let name = root + convWeight
        let shape: [Int]
        do { shape = try source.shape(of: name) } catch { throw .tensorFile(error) }
        guard shape.count == 4 else { throw .shapeMismatch(key: name, file: file, expected: [-1, -1, 1, 1], actual: shape) }
        return shape
    }

    /// The metadata entries written with a head.
    public static func metadata(_ configuration: SegmentationHeadConfiguration) -> [String: String] {
        var entries: [String: String] = [
            "format": formatName,
            "head": "BNHead",
            "layers": configuration.layers.text,
            "classes": JSONValue.array(configuration.classNames.map { .string($0) }).serialized,
            "ignore_index": "255",
            "reduce_zero_label": configuration.reduceZeroLabel ? "true" : "false",
        ]
        if let backbone = configuration.backbone { entries["backbone"] = backbone }
        if let policy = configuration.inputPolicy { entries["input_policy"] = policy }
        for (key, value) in configuration.notes { entries["note." + key] = value }
        return entries
    }

    /// The configuration stored in a head file's metadata.
    public static func configuration(metadata: [String: String], file: String) throws(SegmentationError) -> SegmentationHeadConfiguration {
        func entry(_ key: String) throws(SegmentationError) -> String {
            guard let value = metadata[key] else { throw .invalidMetadata(file: file, key: key, reason: "missing") }
            return value
        }
        let classesText = try entry("classes")
        let classes: [String]
        do {
            let parsed = try JSONValue.parse(Array(classesText.utf8))
            guard let items = parsed.arrayValue?.compactMap(\.stringValue), items.count == parsed.arrayValue?.count, !items.isEmpty else {
                throw SegmentationError.invalidMetadata(file: file, key: "classes", reason: "must be a JSON array of names")
            }
            classes = items
        } catch let error as SegmentationError {
            throw error
        } catch {
            throw .invalidMetadata(file: file, key: "classes", reason: "\(error)")
        }
        let layers: LayerSelection
        do { layers = try LayerSelection(text: try entry("layers")) } catch { throw .invalidMetadata(file: file, key: "layers", reason: error.description) }
        let reduce = metadata["reduce_zero_label"] ?? "false"
        guard reduce == "true" || reduce == "false" else {
            throw .invalidMetadata(file: file, key: "reduce_zero_label", reason: "must be true or false, got '\(reduce)'")
        }
        if let ignore = metadata["ignore_index"], ignore != "255" {
            throw .invalidMetadata(file: file, key: "ignore_index", reason: "only 255 is supported, got '\(ignore)'")
        }
        var notes: [String: String] = [:]
        for (key, value) in metadata where key.hasPrefix("note.") { notes[String(key.dropFirst(5))] = value }
        return SegmentationHeadConfiguration(
            layers: layers, classNames: classes, backbone: metadata["backbone"], inputPolicy: metadata["input_policy"],
            reduceZeroLabel: reduce == "true", notes: notes)
    }

    /// Writes `head` as `.safetensors` under the released names, with its configuration as
    /// metadata; atomically.
    public static func write(_ head: SegmentationHead, to url: URL) throws(SegmentationError) {
        let (k, c) = (head.numClasses, head.channels)
        let tensors: [(name: String, tensor: Tensor)] = [
            (prefix + convWeight, Tensor(shape: [k, c, 1, 1], scalars: head.classifierWeight)),
            (prefix + convBias, Tensor(shape: [k], scalars: head.classifierBias)),
            (prefix + bnWeight, Tensor(shape: [c], scalars: head.batchNormWeight)),
            (prefix + bnBias, Tensor(shape: [c], scalars: head.batchNormBias)),
            (prefix + runningMean, Tensor(shape: [c], scalars: head.runningMean)),
            (prefix + runningVariance, Tensor(shape: [c], scalars: head.runningVariance)),
            (prefix + batchesTracked, Tensor(shape: [], scalars: [Float(head.batchesTracked)])),
        ]
        do {
            try SafetensorsFile.write(tensors, metadata: metadata(head.configuration), to: url)
        } catch {
            throw .tensorFile(error)
        }
    }
}
