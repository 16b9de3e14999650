import DinoImage
import DinoTensor
import Foundation

/// How a dataset folder is organised.
public enum DatasetLayout: String, Sendable, CaseIterable {
    /// `images/[split/]*.jpg|png...` with `masks/[split/]<stem>.png` (class indices, 255
    /// ignored) and optionally `classes.txt` (one class name per line).
    case folders
    /// Pascal VOC: `JPEGImages/<id>.jpg`, `SegmentationClass/<id>.png` (palette PNGs),
    /// `ImageSets/Segmentation/<split>.txt`; 21 classes.
    case voc
    /// ADE20K (ADEChallengeData2016): `images/{training,validation}/*.jpg`,
    /// `annotations/{training,validation}/<stem>.png`; label 0 is "other" and ignored, the 150
    /// classes are labels 1...150 shifted down by one.
    case ade20k
}

/// One image and its mask.
public struct SegmentationSample: Sendable, Equatable {
    /// The name shared by image and mask (file stem or VOC id).
    public var id: String
    /// The image file.
    public var image: URL
    /// The mask file.
    public var mask: URL
}

/// A labelled image set in one of the common layouts.
public struct SegmentationDataset: Sendable {
    /// The dataset folder.
    public let root: URL
    /// Its layout.
    public let layout: DatasetLayout
    /// The split read (`train`, `val`, `training`...), if the layout has splits.
    public let split: String?
    /// Samples, sorted by id.
    public let samples: [SegmentationSample]
    /// Class names the layout defines (VOC, ADE20K) or `classes.txt` lists; nil if unknown.
    public let classNames: [String]?
    /// Whether masks are read with ADE20K's `reduce_zero_label`.
    public let reduceZeroLabel: Bool

    /// Reads the sample list of the dataset at `root`. The layout is detected when not given,
    /// from the folders of the split asked for; `split` defaults to `train` (VOC), `training`
    /// (ADE20K) or the `images` folder itself.
    public init(root: URL, layout: DatasetLayout? = nil, split: String? = nil) throws(SegmentationError) {
        let path = root.path
        guard let chosen = layout ?? Self.detectLayout(root, split: { _ in split }) else {
            let ade = Self.ade20kSplit(split)
            throw .invalidDataset(path: path, reason: "no known layout: expected images/ + masks/, JPEGImages/ + SegmentationClass/ (VOC) "
                + "or images/\(ade) + annotations/\(ade) (ADE20K)")
        }
        self.root = root
        self.layout = chosen
        switch chosen {
        case .folders:
            var imageFolder = root.appendingPathComponent("images"), maskFolder = root.appendingPathComponent("masks")
            if let split {
                imageFolder.appendPathComponent(split)
                maskFolder.appendPathComponent(split)
            }
            self.split = split
            samples = try Self.pairs(images: imageFolder, masks: maskFolder, datasetPath: path)
            classNames = try Self.classList(root.appendingPathComponent("classes.txt"))
            reduceZeroLabel = false
        case .voc:
            let name = split ?? "train"
            let list = root.appendingPathComponent("ImageSets/Segmentation/\(name).txt")
            guard let ids = try? InputFile.lines(of: list) else {
                throw .invalidDataset(path: path, reason: "no split list ImageSets/Segmentation/\(name).txt")
            }
            var found: [SegmentationSample] = []
            for id in ids {
                let image: URL, mask: URL
                do {
                    image = try InputFile.confined("JPEGImages/\(id).jpg", in: root, source: list.path)
                    mask = try InputFile.confined("SegmentationClass/\(id).png", in: root, source: list.path)
                } catch {
                    throw .invalidDataset(path: list.path, reason: "id '\(id)' \(error.detail)")
                }
                for file in [image, mask] where !FileManager.default.fileExists(atPath: file.path) {
                    throw .invalidDataset(path: path, reason: "\(name).txt lists '\(id)' but \(file.path) does not exist")
                }
                found.append(SegmentationSample(id: id, image: image, mask: mask))
            }
            self.split = name
            samples = found
            classNames = DatasetClasses.voc
            reduceZeroLabel = false
        case .ade20k:
            let name = Self.ade20kSplit(split)
            self.split = name
            samples = try Self.pairs(images: root.appendingPathComponent("images/\(name)"),
                                     masks: root.appendingPathComponent("annotations/\(name)"), datasetPath: path)
            classNames = DatasetClasses.ade20k
            reduceZeroLabel = true
        }
        guard !samples.isEmpty else { throw .invalidDataset(path: path, reason: "the \(chosen.rawValue) split '\(self.split ?? "")' has no samples") }
    }

    /// The ADE20K folder name of `split` (`train` and `val` are aliases), `training` by default.
    static func ade20kSplit(_ split: String?) -> String {
        let aliases = ["train": "training", "val": "validation"]
        return split.map { aliases[$0] ?? $0 } ?? "training"
    }

    /// The layout a folder follows, judged by its sub-folders: for ADE20K, those of the split
    /// `split(.ade20k)` names (a copy may hold only `validation`).
    public static func detectLayout(_ root: URL, split: (DatasetLayout) -> String? = { _ in nil }) -> DatasetLayout? {
        func exists(_ sub: String) -> Bool { InputFile.isDirectory(root.appendingPathComponent(sub)) }
        if exists("JPEGImages") && exists("SegmentationClass") { return .voc }
        let ade = ade20kSplit(split(.ade20k))
        if exists("images/\(ade)") && exists("annotations/\(ade)") { return .ade20k }
        if exists("images") && exists("masks") { return .folders }
        return nil
    }

    /// The mask of `sample`, with `reduce_zero_label` applied for ADE20K.
    public func labels(of sample: SegmentationSample) throws(SegmentationError) -> LabelMap {
        let map = try LabelMapFile.read(sample.mask)
        return reduceZeroLabel ? map.reducingZeroLabel() : map
    }

    private static func pairs(images: URL, masks: URL, datasetPath: String) throws(SegmentationError) -> [SegmentationSample] {
        let files: [URL]
        do {
            files = try FileManager.default.contentsOfDirectory(at: images, includingPropertiesForKeys: nil)
        } catch {
            throw .invalidDataset(path: datasetPath, reason: "cannot list \(images.path)")
        }
        var out: [SegmentationSample] = []
        for image in files where ImageIO.fileExtensions.contains(image.pathExtension.lowercased()) {
            let id = image.deletingPathExtension().lastPathComponent
            let mask = masks.appendingPathComponent(id + ".png")
            guard FileManager.default.fileExists(atPath: mask.path) else {
                throw .invalidDataset(path: datasetPath, reason: "image \(image.lastPathComponent) has no mask \(mask.path)")
            }
            out.append(SegmentationSample(id: id, image: image, mask: mask))
        }
        return out.sorted { $0.id < $1.id }
    }

    private static func classList(_ url: URL) throws(SegmentationError) -> [String]? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let lines: [String]?
        do { lines = try InputFile.lines(of: url) } catch { throw .invalidDataset(path: url.path, reason: error.detail) }
        guard let names = lines else { throw .invalidDataset(path: url.path, reason: "the class list is not UTF-8 text") }
        guard !names.isEmpty, names.count <= 255 else {
            throw .invalidDataset(path: url.path, reason: "needs 1 to 255 class names, one per line; has \(names.count)")
        }
        return names
    }
}
