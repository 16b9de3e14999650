// A custom head in a few dozen lines: k-means over the last block's patch tokens, each patch
// coloured by its cluster. It is written as every head of the library is: a DenseHead (what it
// reads from a backbone pass, and its prediction from that value) and an ImageHead (its files
// per image), and it runs beside a library head (LOST) on one backbone pass per batch.
//
//   swift run -c release PatchClustering MODEL K IMAGES... [--output-dir DIR]
//   swift run -c release PatchClustering Tests/DinoModelTests/Fixtures/reg4_downsample 4 Examples/images/coffee.png
//
// MODEL is a folder laid out as on the Hugging Face hub. The test checkpoint has random weights:
// the clusters show the machinery, not parts of the object.
import DinoDiscovery
import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Foundation

// Dimension letters: B batch, P patches per image (h * w), C channels, K clusters.

/// k-means of each image's patch tokens (last block, final norm, L2-normalised).
struct PatchClusters: DenseHead, ImageHead {
    static let name = "clusters"
    static let argumentHelp = "the number of clusters K"

    let backbone: VisionTransformer
    let clusters: Int
    let iterations = 20

    static func load(argument: String, model: VisionTransformer, modelFolder: URL) throws -> PatchClusters {
        guard let k = Int(argument), k >= 1 else {
            throw PipelineError.invalidArgument(head: name, argument: argument, reason: "K must be a positive integer")
        }
        return PatchClusters(backbone: model, clusters: k)
    }

    /// The head reads one thing: the last hidden state.
    var featureRequest: FeatureRequest { .lastHiddenState(layers: backbone.configuration.numHiddenLayers) }
    var preparation: any ImagePreparing { Preprocessing.resize(shortSide: 224) }
    var outputSuffixes: [String] { [".clusters.png"] }

    /// Per image, the cluster of every patch, row-major over the grid.
    func predict(_ features: BackboneFeatures) throws -> [[Int]] {
        let patches = try features.stage(backbone.configuration.numHiddenLayers, normalized: true).patchTokens  // [B, P, C]
        let (b, p, c) = (patches.shape[0], patches.shape[1], patches.shape[2])
        return (0..<b).map { image in
            var rows = (0..<p).map { Array(patches.scalars[((image * p + $0) * c)..<((image * p + $0 + 1) * c)]) }
            for i in rows.indices {
                let norm = max(rows[i].reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
                rows[i] = rows[i].map { $0 / norm }
            }
            return kMeans(rows)
        }
    }

    /// Lloyd's algorithm from K patches spread evenly over the grid (deterministic).
    func kMeans(_ rows: [[Float]]) -> [Int] {
        let k = min(clusters, rows.count)
        var centroids = (0..<k).map { rows[$0 * rows.count / k] }
        var assignment = [Int](repeating: 0, count: rows.count)
        func distance(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
        for _ in 0..<iterations {
            assignment = rows.map { row in (0..<k).min { distance(row, centroids[$0]) < distance(row, centroids[$1]) } ?? 0 }
            for cluster in 0..<k {
                let members = rows.indices.filter { assignment[$0] == cluster }
                guard !members.isEmpty else { continue }
                centroids[cluster] = (0..<rows[0].count).map { j in members.reduce(0) { $0 + rows[$1][j] } / Float(members.count) }
            }
        }
        return assignment
    }

    /// The clusters as colours over the image, and their sizes.
    func write(_ prediction: [[Int]], index: Int, of batch: [ImageItem], to files: ImageOutputFiles) throws -> ImageReport {
        let (labels, item) = (prediction[index], batch[index])
        let p = backbone.configuration.patchSize
        let (h, w) = (item.prepared.height / p, item.prepared.width / p)
        let palette: [(Float, Float, Float)] = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
                                                (145, 30, 180), (70, 240, 240), (240, 50, 230)]
        let rgb = labels.flatMap { label -> [Float] in
            let colour = palette[label % palette.count]
            return [colour.0, colour.1, colour.2]
        }
        try ImageIO.write(PatchColors(height: h, width: w, rgb: rgb).render(for: item.prepared, interpolation: .nearest),
                          to: files.url(".clusters.png"))
        let sizes = (0..<clusters).map { cluster in labels.filter { $0 == cluster }.count }
        return ImageReport(line: "\(item.url.lastPathComponent): \(h)x\(w) patches in \(clusters) clusters of \(sizes)")
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
var outputDir = "patch-clusters"
var positional: [String] = []
var index = 0
while index < arguments.count {
    if arguments[index] == "--output-dir", index + 1 < arguments.count {
        outputDir = arguments[index + 1]
        index += 2
    } else {
        positional.append(arguments[index])
        index += 1
    }
}
guard positional.count >= 3 else {
    FileHandle.standardError.write(Data("usage: PatchClustering MODEL_FOLDER K IMAGES... [--output-dir DIR]\n".utf8))
    exit(2)
}

do {
    let folder = URL(fileURLWithPath: positional[0])
    let model = try VisionTransformer(directory: folder)
    let clusters = try PatchClusters.load(argument: positional[1], model: model, modelFolder: folder)
    let lost = try DiscoveryImageHead.load(argument: "lost", model: model, modelFolder: folder)
    // Both heads read the same backbone, so each batch runs it once for the two of them.
    let pipeline = HeadPipeline(heads: [clusters, lost], folder: URL(fileURLWithPath: outputDir))
    var failed = false
    for path in positional.dropFirst(2) {
        let url = URL(fileURLWithPath: path)
        let image = try ImageIO.read(url)
        let prepared = try clusters.preparation.prepare(image, patchSize: model.configuration.patchSize)
        let item = ImageItem(url: url, image: image, prepared: prepared, outputStem: url.deletingPathExtension().lastPathComponent)
        for result in pipeline.run([item]) {
            switch result[0] {
            case .success(let report): print(report.line ?? "")
            case .failure(let error):
                FileHandle.standardError.write(Data("error: \(path): \(error)\n".utf8))
                failed = true
            }
        }
    }
    exit(failed ? 1 : 0)
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
