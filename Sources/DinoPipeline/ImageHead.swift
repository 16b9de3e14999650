import DinoImage
import DinoModel
import DinoTensor
import Foundation

/// What a head says about one image besides its files: a line for the terminal and a record for
/// a run's JSON summary.
public struct ImageReport: Sendable {
    /// One line, e.g. `chelsea.png: 448x448, 3 classes (cat 61%, ...)`.
    public var line: String?
    /// A JSON record of the image's result.
    public var record: JSONValue?

    /// A report from its parts.
    public init(line: String? = nil, record: JSONValue? = nil) {
        self.line = line
        self.record = record
    }
}

/// A head the image tools run (`dino predict`, the head commands, the service): loaded from a
/// command-line argument, bound to the backbone it reads, writing its files per image.
///
/// A type that is also a `DenseHead` gets `featureRequest` and `predict` from it, so a new head
/// for the tools is one type in its `Heads/` folder conforming to both, and one line in the
/// CLI's list of heads.
public protocol ImageHead: Sendable {
    /// What the head predicts for a batch.
    associatedtype Prediction

    /// The name in `--head NAME=ARGUMENT` and in messages, e.g. `segment`.
    static var name: String { get }
    /// What `ARGUMENT` is, for `--help`.
    static var argumentHelp: String { get }
    /// The head for `model` (whose folder is `modelFolder`) from its argument.
    static func load(argument: String, model: VisionTransformer, modelFolder: URL) throws -> Self

    /// The backbone the head reads: heads on one backbone share its passes (Depth Anything
    /// brings its own).
    var backbone: VisionTransformer { get }
    /// What the head reads from a pass of `backbone`.
    var featureRequest: FeatureRequest { get }
    /// How images are prepared when the user gives no preset.
    var preparation: any ImagePreparing { get }
    /// The endings of the files written per image (`.labels.png`, ...): an image whose files all
    /// exist is done (`--resume`).
    var outputSuffixes: [String] { get }

    /// The prediction for a batch of prepared images from a pass of `backbone` over their
    /// stacked pixels that kept (at least) `featureRequest`.
    func predict(_ features: BackboneFeatures, batch: [ImageItem]) throws -> Prediction
    /// Writes image `index`'s files (to `files.url(suffix)`) and says what it found.
    func write(_ prediction: Prediction, index: Int, of batch: [ImageItem], to files: ImageOutputFiles) throws -> ImageReport
}

extension ImageHead where Self: DenseHead, Prediction == Self.Prediction {
    /// The `DenseHead` prediction from the shared pass.
    public func predict(_ features: BackboneFeatures, batch: [ImageItem]) throws -> Prediction {
        try predict(features)
    }
}

extension ImageHead {
    /// Predicts for a batch and writes each image's files; one result per image (a failure of the
    /// whole batch fails every image).
    func run(_ features: BackboneFeatures, batch: [ImageItem], folder: URL) -> [Result<ImageReport, any Error>] {
        let prediction: Prediction
        do {
            prediction = try predict(features, batch: batch)
        } catch {
            return batch.map { _ in .failure(error) }
        }
        return batch.indices.map { index in
            let files = ImageOutputFiles(folder: folder, stem: batch[index].outputStem)
            do {
                let report = try write(prediction, index: index, of: batch, to: files)
                try files.commit()
                return .success(report)
            } catch {
                files.discard()
                return .failure(error)
            }
        }
    }
}

/// Several image heads run on the same batches: one backbone pass per batch and backbone, on the
/// union of the requests of the heads that read it.
public struct HeadPipeline: Sendable {
    /// The heads, in the order their results are reported.
    public let heads: [any ImageHead]
    /// Where their files go.
    public let folder: URL

    /// A pipeline writing into `folder`.
    public init(heads: [any ImageHead], folder: URL) {
        self.heads = heads
        self.folder = folder
    }

    /// Every output file ending of every head.
    public var outputSuffixes: [String] { heads.flatMap(\.outputSuffixes) }

    /// Runs every head on a batch of prepared images of one size; `results[h][i]` is head `h`'s
    /// result for image `i`. A pass that fails fails its heads for the whole batch.
    public func run(_ batch: [ImageItem]) -> [[Result<ImageReport, any Error>]] {
        var results = [[Result<ImageReport, any Error>]](repeating: [], count: heads.count)
        for (members, pass) in passes(batch) {
            for member in members {
                switch pass {
                case .success(let features): results[member] = heads[member].run(features, batch: batch, folder: folder)
                case .failure(let error): results[member] = batch.map { _ in .failure(error) }
                }
            }
        }
        return results
    }

    /// Every head's prediction for a batch, in head order, without writing anything (for timing).
    public func predictions(_ batch: [ImageItem]) throws -> [Any] {
        var out = [Any?](repeating: nil, count: heads.count)
        for (members, pass) in passes(batch) {
            let features = try pass.get()
            for member in members { out[member] = try heads[member].predict(features, batch: batch) }
        }
        return out.compactMap { $0 }
    }

    /// One pass per backbone over the batch's stacked pixels, on the union of the requests of the
    /// heads (by index) that read it.
    private func passes(_ batch: [ImageItem]) -> [(members: [Int], pass: Result<BackboneFeatures, any Error>)] {
        guard !batch.isEmpty else { return [] }
        let pixels = Tensor.stack(batch.map(\.prepared.pixels))
        let contentRects = batch.map(\.prepared.contentRect)
        var groups: [(backbone: VisionTransformer, members: [Int])] = []
        for (index, head) in heads.enumerated() {
            if let group = groups.firstIndex(where: { $0.backbone === head.backbone }) {
                groups[group].members.append(index)
            } else {
                groups.append((head.backbone, [index]))
            }
        }
        return groups.map { group in
            let request = group.members.reduce(FeatureRequest()) { $0.union(heads[$1].featureRequest) }
            return (group.members, Result { try group.backbone.features(pixels, request: request, contentRects: contentRects) })
        }
    }
}

/// An image head type as the tools list it: its name, what its argument is, and how to load it.
public struct HeadRegistration: Sendable {
    /// `ImageHead.name`.
    public let name: String
    /// `ImageHead.argumentHelp`.
    public let argumentHelp: String
    private let loader: @Sendable (String, VisionTransformer, URL) throws -> any ImageHead

    /// The registration of `type`.
    public init<Head: ImageHead>(_ type: Head.Type) {
        name = Head.name
        argumentHelp = Head.argumentHelp
        loader = { try Head.load(argument: $0, model: $1, modelFolder: $2) }
    }

    /// `ImageHead.load(argument:model:modelFolder:)` of the registered type.
    public func load(argument: String, model: VisionTransformer, modelFolder: URL) throws -> any ImageHead {
        try loader(argument, model, modelFolder)
    }
}
