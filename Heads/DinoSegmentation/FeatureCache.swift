import DinoImage
import DinoLayers
import DinoModel
import DinoTensor
import Foundation

// Dimension letters: C head channels (hidden size x blocks), h x w the patch grid,
// H x W the prepared image content.

/// The frozen part of a probe: which blocks of which backbone, and how images are prepared.
public struct FeatureExtractor: Sendable {
    /// The backbone.
    public let model: VisionTransformer
    /// 0-based blocks, in block order.
    public let blocks: [Int]
    /// How images are prepared.
    public let preprocessing: Preprocessing

    /// An extractor of `layers` of `model`.
    public init(model: VisionTransformer, layers: LayerSelection, preprocessing: Preprocessing) throws(SegmentationError) {
        guard InputPolicy.text(preprocessing) != nil else {
            throw .invalidSetting(name: "preprocessing", reason: "segmentation needs the whole image; the classification preset crops it")
        }
        self.model = model
        self.blocks = try layers.blocks(depth: model.configuration.numHiddenLayers)
        self.preprocessing = preprocessing
    }

    /// Head input channels `C`.
    public var channels: Int { model.configuration.hiddenSize * blocks.count }

    /// The head input of one image and the size it covers: the image prepared, its content
    /// (the preset's padding cut away) padded around the centre to multiples of the patch size,
    /// the blocks' normalised patch maps concatenated: `[C, h, w]`. Logits computed from it are
    /// upsampled to the content size `H x W`, as `Segmenter.logits(_:)` does.
    public func features(of image: RGBImage) throws(SegmentationError) -> (features: Tensor, contentHeight: Int, contentWidth: Int) {
        let p = model.configuration.patchSize
        let prepared: PreparedImage
        do { prepared = try preprocessing.prepare(image, patchSize: p) } catch { throw .image(error) }
        let rect = prepared.contentRect
        let pixels = prepared.pixels.reshaped([1] + prepared.pixels.shape).cropped(to: rect)
        let features: BackboneFeatures
        do {
            features = try model.features(pixels, request: .blocks(blocks, normalized: true), padding: .centre)
        } catch {
            throw .model(error)
        }
        let maps: [Tensor]
        do {
            maps = try blocks.map { (block: Int) throws(DinoModelError) in try features.block(block, normalized: true).patchMap }
        } catch {
            throw .model(error)
        }
        let joined = maps.count == 1 ? maps[0] : concatenateChannels(maps)
        return (joined[0], rect.height, rect.width)
    }
}

/// Head inputs and labels of a dataset, computed once and kept on disk, so that training
/// epochs read them instead of running the backbone again.
///
/// The folder holds `manifest.json` (a fingerprint of everything the features depend on) and
/// per image `sample-NNNNN.safetensors` (`features` F32 `[C, h, w]`) and
/// `sample-NNNNN.labels.png` (the mask with `reduce_zero_label` applied for ADE20K, resized with
/// nearest-neighbour sampling to the image content size `H x W`, as a palette PNG). A cache
/// whose fingerprint differs is rebuilt.
public struct FeatureCache: TrainingSampleSource, Sendable {
    /// The cache folder.
    public let folder: URL
    /// One file per sample, in dataset order.
    public let files: [URL]
    /// The largest label of any mask (ignore excluded), nil if every pixel is ignored.
    public let largestLabel: Int?
    /// Whether the cache was reused rather than built.
    public let reused: Bool

    /// Number of samples.
    public var count: Int { files.count }

    /// Loads sample `index`.
    public func sample(_ index: Int) throws(SegmentationError) -> TrainingSample {
        let url = files[index]
        let features: Tensor
        do {
            features = try SafetensorsFile(url: url).tensor("features")
        } catch {
            throw .tensorFile(error)
        }
        let labels = try LabelMapFile.read(Self.labelsURL(url))
        guard features.rank == 3 else { throw .invalidCache(path: url.path, reason: "features of shape \(features.shape), expected [C, h, w]") }
        return TrainingSample(features: features, labels: labels)
    }

    /// The label file beside a features file.
    static func labelsURL(_ features: URL) -> URL {
        features.deletingPathExtension().appendingPathExtension("labels.png")
    }

    /// What identifies a backbone's weights for the cache: its name (hub id or path) and the
    /// names, sizes and dates of the `.safetensors` files in its folder, so that replacing the
    /// checkpoint invalidates the cache.
    public static func backboneIdentity(name: String, folder: URL) -> String {
        let weightFiles = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        return ([name] + weightFiles.map { file -> String in
            let attributes = try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(file).path)
            return "\(file):\((attributes?[.size] as? NSNumber)?.intValue ?? -1):\((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        }).joined(separator: "|")
    }

    /// Builds the cache of `dataset` in `folder`, or reuses it when its fingerprint matches.
    ///
    /// - Parameters:
    ///   - backboneIdentity: what identifies the backbone's weights (hub id or folder, file
    ///     sizes...); part of the fingerprint.
    ///   - progress: called after each image with (done, total, image name).
    public static func build(dataset: SegmentationDataset, extractor: FeatureExtractor, backboneIdentity: String, folder: URL,
                             progress: (Int, Int, String) -> Void = { _, _, _ in }) throws(SegmentationError) -> FeatureCache {
        let fingerprint = Self.fingerprint(dataset: dataset, extractor: extractor, backboneIdentity: backboneIdentity)
        let manifestURL = folder.appendingPathComponent("manifest.json")
        let files = dataset.samples.indices.map { folder.appendingPathComponent(String(format: "sample-%05d.safetensors", $0)) }
        if let data = try? InputFile.contents(of: manifestURL), let manifest = try? JSONValue.parse(Array(data)),
           manifest["fingerprint"]?.stringValue == fingerprint, manifest["count"]?.intValue == files.count,
           files.allSatisfy({ FileManager.default.fileExists(atPath: $0.path) && FileManager.default.fileExists(atPath: labelsURL($0).path) }) {
            let largest = manifest["largest_label"]?.intValue
            return FeatureCache(folder: folder, files: files, largestLabel: largest.flatMap { $0 >= 0 ? $0 : nil }, reused: true)
        }
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            // Stale entries of an earlier cache go first; the manifest is written last, so an
            // interrupted build is never mistaken for a complete one.
            try? FileManager.default.removeItem(at: manifestURL)
            for item in try FileManager.default.contentsOfDirectory(atPath: folder.path) where item.hasPrefix("sample-") && (item.hasSuffix(".safetensors") || item.hasSuffix(".labels.png")) {
                try FileManager.default.removeItem(at: folder.appendingPathComponent(item))
            }
        } catch {
            throw .invalidCache(path: folder.path, reason: "cannot prepare the folder: \(error)")
        }
        var largest = -1
        for (i, sample) in dataset.samples.enumerated() {
            let image: RGBImage
            do { image = try ImageIO.read(sample.image) } catch { throw .image(error) }
            let mask = try dataset.labels(of: sample)
            guard mask.width == image.width, mask.height == image.height else {
                throw .sizeMismatch(what: "mask \(sample.mask.path)", expected: "\(image.width)x\(image.height) (its image)",
                                    actual: "\(mask.width)x\(mask.height)")
            }
            largest = max(largest, mask.largestLabel ?? -1)
            let (features, height, width) = try extractor.features(of: image)
            let labels = mask.resized(width: width, height: height)
            do {
                try SafetensorsFile.write([("features", features)], metadata: ["image": sample.image.path, "mask": sample.mask.path], to: files[i])
            } catch {
                throw .tensorFile(error)
            }
            try LabelMapFile.write(labels, to: Self.labelsURL(files[i]))
            progress(i + 1, dataset.samples.count, sample.image.lastPathComponent)
        }
        let manifest = JSONValue.object([
            ("fingerprint", .string(fingerprint)), ("count", .number(String(files.count))), ("largest_label", .number(String(largest))),
            ("dataset", .string(dataset.root.path)), ("split", .string(dataset.split ?? "")),
            ("backbone", .string(backboneIdentity)), ("blocks", .array(extractor.blocks.map { .number(String($0)) })),
            ("input_policy", .string(InputPolicy.text(extractor.preprocessing) ?? "")),
        ])
        do {
            try AtomicFile.write(to: manifestURL) { try $0.write(contentsOf: Data(manifest.serialized.utf8)) }
        } catch {
            throw .tensorFile(error)
        }
        return FeatureCache(folder: folder, files: files, largestLabel: largest >= 0 ? largest : nil, reused: false)
    }

    /// A hash (FNV-1a, 64 bits) of the backbone identity, the blocks, the input policy, the
    /// dataset's layout and split, and each image and mask's path, size and modification time.
    static func fingerprint(dataset: SegmentationDataset, extractor: FeatureExtractor, backboneIdentity: String) -> String {
        var text = "v1|\(backboneIdentity)|\(extractor.blocks)|\(InputPolicy.text(extractor.preprocessing) ?? "")|"
        text += "\(dataset.layout.rawValue)|\(dataset.split ?? "")|\(dataset.reduceZeroLabel)"
        for sample in dataset.samples {
            for url in [sample.image, sample.mask] {
                let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
                let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
                let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
                text += "|\(url.path)|\(size)|\(modified)"
            }
        }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
        return String(format: "%016llx", hash)
    }
}
