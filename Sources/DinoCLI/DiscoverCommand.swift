import ArgumentParser
import DinoDiscovery
import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Foundation

/// `dino discover`: unsupervised object discovery in images, and its CorLoc evaluation.
struct DiscoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discover",
        abstract: "Find the main object in images without labels (LOST or TokenCut), or measure CorLoc on VOC / COCO20k.",
        discussion: """
            Both methods compare the patches of an image through the last block's attention \
            keys (or queries / values). LOST takes the patch correlated positively with the \
            fewest others as a seed on the object and grows it with its most similar low-degree \
            patches; TokenCut cuts the patch-similarity graph in two (normalized cut) and keeps \
            the side of the most salient patch. The box is the 4-connected component holding \
            the seed. Registers matter here: without them, large DINOv2 models put high-norm \
            artifact tokens in the background that LOST mistakes for objects.

            `dino discover --model M IMAGES...` runs on images (the `images` subcommand is the \
            default); `dino discover eval --dataset DIR` measures CorLoc.
            """,
        subcommands: [DiscoverImagesCommand.self, DiscoverEvalCommand.self],
        defaultSubcommand: DiscoverImagesCommand.self)
}

/// The method and its settings, shared by `discover images` and `discover eval`.
struct DiscoveryOptions: ParsableArguments {
    @Option(name: .long, help: "Discovery method: lost or tokencut.")
    var method = "lost"

    @Option(name: .long, help: "Last-block projection to compare patches with: k (keys), q (queries) or v (values).")
    var features = "k"

    @Option(name: .customLong("k-patches"), help: "LOST: how many lowest-degree patches may join the seed (default 100).")
    var kPatches: Int?

    @Option(name: .long, help: ArgumentHelp(
        "LOST: bias added to the Gram matrix before its sign tests (default 0; write negative values as --gram-bias=-0.5).",
        discussion: "The registers paper adds such a bias for DINOv2; a negative bias acts as a similarity threshold above 0."))
    var gramBias: Float?

    @Option(name: .long, help: "TokenCut: cosine similarity above which two patches are joined (default 0.2).")
    var tau: Float?

    @Option(name: .long, help: "TokenCut: weight between patches that are not joined (default 1e-5).")
    var eps: Float?

    func validate() throws {
        guard let name = MethodName(rawValue: method) else { throw ValidationError("--method must be lost or tokencut, got \(method)") }
        if FeatureKind(rawValue: features) == nil { throw ValidationError("--features must be k, q or v, got \(features)") }
        switch name {
        case .lost:
            if tau != nil || eps != nil { throw ValidationError("--tau and --eps are TokenCut's; add --method tokencut") }
        case .tokencut:
            if kPatches != nil || gramBias != nil { throw ValidationError("--k-patches and --gram-bias are LOST's; drop them or use --method lost") }
        }
        if let kPatches, kPatches < 1 { throw ValidationError("--k-patches must be at least 1") }
        if let gramBias, !gramBias.isFinite { throw ValidationError("--gram-bias must be a finite number") }
        if let tau, !(tau > -1 && tau < 1) { throw ValidationError("--tau must be a cosine similarity in (-1, 1)") }
        if let eps, !(eps > 0 && eps.isFinite) { throw ValidationError("--eps must be positive") }
    }

    private enum MethodName: String {
        case lost, tokencut
    }

    /// The method with its settings.
    var discoveryMethod: DiscoveryMethod {
        if method == MethodName.tokencut.rawValue {
            return .tokenCut(TokenCut(threshold: tau ?? 0.2, nonEdgeWeight: eps ?? 1e-5))
        }
        return .lost(LOST(potentialCount: kPatches ?? 100, gramBias: gramBias ?? 0))
    }

    /// The projection compared.
    var kind: FeatureKind { FeatureKind(rawValue: features) ?? .keys }

    /// "LOST (...) on keys".
    var summary: String { "\(discoveryMethod.summary) on \(kind)" }

}

/// `dino discover [images]`: the main object of each image, as a box, a seed and a mask.
struct DiscoverImagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "Find the main object of each image; draw it and print its box.",
        discussion: """
            Images are used at their size, padded at the bottom and right to a multiple of the \
            patch size, as LOST does (give --resize for large photos). Prints one JSON object \
            per image, {"image", "box": [x0, y0, x1, y1], "seed": [row, col], "score"}: the box \
            in pixels of the original image (x1, y1 excluded), the seed patch on the grid, and \
            the score (LOST: 1 - the seed's degree / (patches - 1); TokenCut: 1 - lambda2 / 2; \
            both in [0, 1], higher is a clearer object). Writes OUTPUT_DIR/<name>.discover.png: \
            the object's patches tinted orange, the rest of the foreground blue, the box yellow, \
            the seed patch red.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var images: ImageInputOptions
    @OptionGroup var preprocess: PreprocessOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var discovery: DiscoveryOptions

    @OptionGroup var report: ReportOptions

    @Option(name: .long, help: "Largest patch count per image (the Gram matrix grows with its square); larger images fail with a hint to --resize.")
    var maxPatches = 12_000

    func validate() throws {
        if images.inputs.isEmpty { throw ValidationError("give image files, folders or globs") }
        if maxPatches < 1 { throw ValidationError("--max-patches must be at least 1") }
    }

    func run() throws {
        let (vit, folder) = try modelOptions.load()
        let head = ObjectDiscoveryHead(model: vit, method: discovery.discoveryMethod, kind: discovery.kind, maxPatches: maxPatches)
        try runHeads([DiscoveryImageHead(head: head)], names: [DiscoveryImageHead.name], model: vit, modelFolder: folder, label: "discover",
                     images: images, preprocess: preprocess, output: output, report: report)
    }
}

/// `dino discover eval`: CorLoc on a VOC or COCO20k folder.
struct DiscoverEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure CorLoc (share of images whose box has IoU >= 0.5 with a ground-truth box) on VOC or COCO20k.",
        discussion: """
            As LOST evaluates: images at their size padded bottom/right, IoU without +1 on the \
            widths. voc: DIR holds JPEGImages/<id>.jpg, Annotations/<id>.xml and \
            ImageSets/Main/<split>.txt; VOC's 1-based boxes are converted; every object is ground \
            truth unless --no-hard drops truncated and difficult ones (and the images left \
            without any). coco20k: DIR holds the file list (--file-list, default \
            DIR/coco_20k_filenames.txt, paths relative to --images, default DIR) and the COCO \
            instances file (--annotations, default DIR/instances_train2014_sel20k.json); crowd \
            boxes are not ground truth. An image that cannot be read or annotated is reported \
            and left out of CorLoc; the exit code is then 1. Prints the totals as a table; \
            --json and --csv write the per-image results.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var discovery: DiscoveryOptions

    @Option(name: .long, help: "Dataset folder.")
    var dataset: String

    @Option(name: .long, help: "Dataset layout: voc or coco20k.")
    var format = "voc"

    @Option(name: .long, help: "VOC split (ImageSets/Main/<split>.txt).")
    var split = "trainval"

    @Flag(name: .long, help: "VOC: drop truncated and difficult objects, and the images left without objects (LOST's --no_hard).")
    var noHard = false

    @Option(name: .long, help: "COCO20k: the instances JSON (default DIR/instances_train2014_sel20k.json).")
    var annotations: String?

    @Option(name: .long, help: "COCO20k: the file list (default DIR/coco_20k_filenames.txt).")
    var fileList: String?

    @Option(name: .long, help: "COCO20k: the folder the file list's paths are relative to (default DIR).")
    var images: String?

    @Option(name: .long, help: "Evaluate only the first N images.")
    var limit: Int?

    @Option(name: .long, help: "Images per forward pass (images of one size are batched together).")
    var batchSize = 8

    @Option(name: .long, help: "Largest patch count per image; larger images fail.")
    var maxPatches = 12_000

    @Option(name: .long, help: "Write the totals and per-image results as JSON to this file.")
    var json: String?

    @Option(name: .long, help: "Write the per-image results as CSV to this file.")
    var csv: String?

    func validate() throws {
        if format != "voc" && format != "coco20k" { throw ValidationError("--format must be voc or coco20k, got \(format)") }
        if format == "voc" && (annotations != nil || fileList != nil || images != nil) {
            throw ValidationError("--annotations, --file-list and --images are for --format coco20k")
        }
        if format == "coco20k" && noHard { throw ValidationError("--no-hard is for --format voc") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if maxPatches < 1 { throw ValidationError("--max-patches must be at least 1") }
    }

    func run() throws {
        let root = URL(fileURLWithPath: dataset)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--dataset \(dataset): no such folder")
        }
        let data = try loadDataset(root)
        for failure in data.failures { printError("error: \(failure.id): \(failure.reason)") }
        let selected = limit.map { Array(data.images.prefix($0)) } ?? data.images

        let (vit, _) = try modelOptions.load()
        let head = ObjectDiscoveryHead(model: vit, method: discovery.discoveryMethod, kind: discovery.kind, maxPatches: maxPatches)
        // Ground truth by file, in order (a split may list a file twice).
        var pending: [String: [Int]] = [:]
        for (index, image) in selected.enumerated() { pending[image.url.standardizedFileURL.path, default: []].append(index) }
        var corloc = CorLoc()
        var rows: [(image: GroundTruthImage, object: DiscoveredObject, record: CorLocRecord)] = []
        var runner = ImageRunner(files: selected.map(\.url), preparation: Preprocessing.padBottomRight, patchSize: vit.configuration.patchSize,
                                 batchSize: batchSize, label: "corloc")
        runner.run { batch in
            let pass = try vit.features(Tensor.stack(batch.map(\.prepared.pixels)), request: head.featureRequest,
                                        contentRects: batch.map(\.prepared.contentRect))
            var failed: [(ImageItem, String)] = []
            for (item, found) in zip(batch, try head.objects(pass)) {
                let path = item.url.standardizedFileURL.path
                guard let index = pending[path]?.first else { continue }
                pending[path]?.removeFirst()
                let image = selected[index]
                do {
                    let object = try found.get()
                    let record = corloc.add(id: image.id, predicted: object.box, groundTruth: image.boxes)
                    rows.append((image, object, record))
                } catch {
                    failed.append((item, "\(error)"))
                }
            }
            return failed
        }
        let failures = data.failures.map { (image: $0.id, reason: $0.reason) } + runner.failures.map { (image: $0.path, reason: $0.reason) }
        print(table(name: data.name, listed: selected.count + data.failures.count, excluded: data.excluded.count,
                    failed: failures.count, corloc: corloc))
        if let json {
            try writeText(report(data, failures: failures, corloc: corloc, rows: rows).serialized + "\n", to: json)
        }
        if let csv {
            try writeText(csvText(rows), to: csv)
        }
        if !failures.isEmpty { throw ExitCode(1) }
    }

    private func loadDataset(_ root: URL) throws -> DiscoveryDataset {
        if format == "voc" { return try VOCDataset.load(root: root, split: split, removeHard: noHard) }
        return try COCO20kDataset.load(
            annotations: annotations.map { URL(fileURLWithPath: $0) } ?? root.appendingPathComponent("instances_train2014_sel20k.json"),
            fileList: fileList.map { URL(fileURLWithPath: $0) } ?? root.appendingPathComponent("coco_20k_filenames.txt"),
            imageRoot: images.map { URL(fileURLWithPath: $0) } ?? root)
    }

    private func table(name: String, listed: Int, excluded: Int, failed: Int, corloc: CorLoc) -> String {
        let lines: [(String, String)] = [
            ("dataset", "\(name) (\(dataset))"),
            ("method", discovery.summary),
            ("images", "\(listed)" + (limit != nil ? " (limited to \(limit ?? 0))" : "")),
            ("excluded", "\(excluded)" + (noHard ? " (no object left without hard ones)" : "")),
            ("failed", "\(failed)"),
            ("evaluated", "\(corloc.evaluated)"),
            ("found", "\(corloc.found)"),
            ("CorLoc", String(format: "%.2f %%", corloc.percentage)),
        ]
        return lines.map { $0.0.padding(toLength: 10, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }

    private func report(_ data: DiscoveryDataset, failures: [(image: String, reason: String)], corloc: CorLoc,
                        rows: [(image: GroundTruthImage, object: DiscoveredObject, record: CorLocRecord)]) -> JSONValue {
        func numbers(_ values: [Int]) -> JSONValue { .array(values.map { .number(String($0)) }) }
        let images = rows.map { row -> JSONValue in
            .object([
                ("id", .string(row.image.id)),
                ("image", .string(row.image.url.path)),
                ("box", numbers(row.object.box.coordinates)),
                ("seed", numbers([row.object.seed.row, row.object.seed.column])),
                ("score", .number(String(row.object.score))),
                ("best_iou", .number(String(row.record.bestIoU))),
                ("correct", .bool(row.record.correct)),
                ("ground_truth", .array(row.image.boxes.map { numbers($0.coordinates) })),
            ])
        }
        return .object([
            ("dataset", .string(dataset)),
            ("format", .string(format)),
            ("name", .string(data.name)),
            ("method", .string(discovery.summary)),
            ("corloc", .number(String(corloc.percentage))),
            ("found", .number(String(corloc.found))),
            ("evaluated", .number(String(corloc.evaluated))),
            ("excluded", .array(data.excluded.map { .string($0) })),
            ("failures", .array(failures.map { .object([("image", .string($0.image)), ("reason", .string($0.reason))]) })),
            ("images", .array(images)),
        ])
    }

    private func csvText(_ rows: [(image: GroundTruthImage, object: DiscoveredObject, record: CorLocRecord)]) -> String {
        func field(_ text: String) -> String {
            text.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var lines = ["id,image,x0,y0,x1,y1,seed_row,seed_col,score,best_iou,correct"]
        for row in rows {
            let b = row.object.box
            lines.append(([field(row.image.id), field(row.image.url.path)]
                + [b.x0, b.y0, b.x1, b.y1, row.object.seed.row, row.object.seed.column].map(String.init)
                + [String(row.object.score), String(row.record.bestIoU), row.record.correct ? "1" : "0"]).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Writes `text` to `path` atomically.
private func writeText(_ text: String, to path: String) throws {
    try AtomicFile.write(to: URL(fileURLWithPath: path)) { try $0.write(contentsOf: Data(text.utf8)) }
}
