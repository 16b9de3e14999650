import ArgumentParser
import DinoCompute
import DinoHub
import DinoImage
import DinoModel
import Foundation

/// `--threads`, `--max-tokens` and `--precision`: how every command that loads a model runs it.
struct ComputeOptions: ParsableArguments {
    @Option(name: .long, help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Largest number of tokens (batch x patches) in one forward pass, checked before allocating.")
    var maxTokens = ComputeLimits.defaultMaxTokens

    @Option(name: .long, help: ArgumentHelp(
        "Weights of the linear layers: fp32, or bf16 (rounded at load, half the memory; sums stay float32).",
        discussion: """
            With bf16, CPUs with AVX512-BF16 round the activations too and multiply by bfloat16 dot products; \
            others widen the weights to float32 inside the kernel. DINO_BF16_PRODUCTS=widened|dotProducts overrides \
            the choice (dotProducts without AVX512-BF16 runs a slow portable model of the instruction). See \
            `dino bench --precision bf16 --accuracy` for the error against fp32.
            """))
    var precision = "fp32"

    /// `precision` parsed (validated in `validate()`).
    var weightPrecision: WeightPrecision { WeightPrecision(rawValue: precision) ?? .fp32 }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if let products = BFloat16Products.environmentOverride, BFloat16Products(rawValue: products) == nil {
            let known = BFloat16Products.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("DINO_BF16_PRODUCTS=\(products) is not one of \(known)")
        }
        if WeightPrecision(rawValue: precision) == nil {
            let known = WeightPrecision.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("--precision \(precision) is not one of \(known)")
        }
    }

    /// Sets the process-wide thread count and token limit.
    func apply() {
        ComputeThreads.set(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        ComputeLimits.maxTokens = maxTokens
    }
}

/// `--model` with the compute options: shared by every command that runs a model.
struct ModelOptions: ParsableArguments {
    static let modelHelp = ArgumentHelp(
        "Model folder (config.json + model.safetensors), a single .pth / .safetensors checkpoint, or a hub id such as facebook/dinov2-with-registers-small[@revision].",
        discussion: "Hub ids resolve in the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub) and are downloaded when missing (HF_HUB_OFFLINE=1 forbids that; HF_TOKEN is sent when set).")

    @Option(name: .long, help: modelHelp)
    var model: String

    @OptionGroup var compute: ComputeOptions

    /// `--precision`, parsed.
    var weightPrecision: WeightPrecision { compute.weightPrecision }

    /// The model folder: `model` itself when it exists on disk, else the hub snapshot.
    func folder() throws -> URL { try Self.folder(of: model) }

    /// Applies the compute options and loads the model.
    func load() throws -> (model: VisionTransformer, folder: URL) {
        try Self.load(model, compute: compute)
    }

    /// The folder of `model`: itself (or the folder of a checkpoint file) when it exists on disk,
    /// else the hub snapshot, downloaded when missing.
    static func folder(of model: String) throws -> URL {
        let url = URL(fileURLWithPath: model)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            return isDirectory.boolValue ? url : url.deletingLastPathComponent()
        }
        guard HubModelID.looksLikeHubID(model) else {
            throw ValidationError("--model \(model): no such folder, and not a hub id of the form org/name[@revision]")
        }
        let id = try HubModelID(model)
        let progress = ProgressBar(label: "download")
        let client = HubClient(progress: { event in progress.bytes(event.fileName, done: event.bytesDone, total: event.totalBytes) })
        defer { progress.finish() }
        return try client.modelFolder(for: id)
    }

    /// Applies `compute` and loads `model`: a folder or hub snapshot, or a single checkpoint file
    /// whose configuration comes from a `config.json` beside it or, for original Meta names,
    /// from its tensor shapes.
    static func load(_ model: String, compute: ComputeOptions) throws -> (model: VisionTransformer, folder: URL) {
        compute.apply()
        let folder = try folder(of: model)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory), !isDirectory.boolValue {
            let config = folder.appendingPathComponent("config.json")
            let configuration = FileManager.default.fileExists(atPath: config.path) ? try DinoConfiguration.load(from: config) : nil
            return (try VisionTransformer(checkpoint: URL(fileURLWithPath: model), configuration: configuration,
                                          precision: compute.weightPrecision), folder)
        }
        return (try VisionTransformer(directory: folder, precision: compute.weightPrecision), folder)
    }
}

/// How images become pixels (`SPEC` "Preprocessing"); the dense presets never crop.
struct PreprocessOptions: ParsableArguments {
    @Option(name: .long, help: "Resize so the short side is SHORT pixels, rounded with the long side to multiples of the patch size.")
    var resize: Int?

    @Flag(name: .long, help: "Pad to multiples of the patch size (centred) instead of rounding; with --resize, resize to exactly SHORT first.")
    var pad = false

    @Option(name: .long, help: "Resize to exactly HxW pixels (multiples of the patch size).")
    var size: String?

    @Flag(name: .long, help: "The model's own HF preprocessing (its preprocessor_config.json): for DINOv2 shortest edge 256, bicubic, center crop 224; for DINOv3 bilinear to 224x224.")
    var classification = false

    func validate() throws {
        let chosen = [resize != nil || pad, size != nil, classification].filter { $0 }.count
        if chosen > 1 { throw ValidationError("choose one of --resize/--pad, --size and --classification") }
        if let resize, resize < 1 { throw ValidationError("--resize must be positive") }
        if let size, parseSize(size) == nil { throw ValidationError("--size must be HxW, got \(size)") }
    }

    private func parseSize(_ text: String) -> (Int, Int)? {
        let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] > 0 else { return nil }
        return (parts[0], parts[1])
    }

    /// The preset chosen, `fallback` when no option was given.
    func preset(modelFolder: URL, fallback: Preprocessing) throws -> Preprocessing {
        try userPreset(modelFolder: modelFolder) ?? fallback
    }

    /// The model's own HF processor: its folder's `preprocessor_config.json`, else the one its
    /// family was released with (DINOv3's for a `dinov3_vit` config, DINOv2's otherwise).
    static func modelProcessor(modelFolder: URL) throws -> Preprocessing {
        let url = modelFolder.appendingPathComponent("preprocessor_config.json")
        if FileManager.default.fileExists(atPath: url.path) { return try Preprocessing.modelProcessor(at: url) }
        let configuration = try? DinoConfiguration.load(from: modelFolder.appendingPathComponent("config.json"))
        return configuration?.isDINOv3 == true ? .dinov3(.lvd1689m) : .classification(.dinov2)
    }

    /// The preset the user chose, nil when no option was given.
    func userPreset(modelFolder: URL) throws -> Preprocessing? {
        if classification { return try Self.modelProcessor(modelFolder: modelFolder) }
        if let size, let (h, w) = parseSize(size) { return .size(height: h, width: w) }
        if let resize { return pad ? .resizeAndPad(shortSide: resize) : .resize(shortSide: resize) }
        if pad { return .pad }
        return nil
    }
}

/// Image inputs: files, folders and glob patterns, with the batch size.
struct ImageInputOptions: ParsableArguments {
    @Argument(help: "Image files, folders (their images, sorted) or glob patterns such as 'photos/*.jpg'.")
    var inputs: [String] = []

    @Flag(name: .long, help: "Descend into sub-folders of folder inputs.")
    var recursive = false

    @Option(name: .long, help: "Images per forward pass (images of one prepared size are batched together).")
    var batchSize = 8

    @Option(name: .long, help: "Largest image accepted, in pixels, checked from the file header before decoding (the decoder reads at most 2^30 pixels, 2^20 a side).")
    var maxPixels = ImageIO.defaultMaxPixels

    @Flag(name: .long, help: "Skip images whose outputs already exist (continue an interrupted run).")
    var resume = false

    func validate() throws {
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if maxPixels < 1 { throw ValidationError("--max-pixels must be at least 1") }
    }

    /// The input files, in order, without duplicates; patterns or folders that match nothing
    /// are returned as failures.
    func expand() -> (files: [URL], missing: [String]) {
        var files: [URL] = []
        var seen = Set<String>()
        var missing: [String] = []
        func add(_ url: URL) {
            let path = url.standardizedFileURL.path
            if seen.insert(path).inserted { files.append(URL(fileURLWithPath: path)) }
        }
        for input in inputs {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) {
                if isDirectory.boolValue {
                    let found = imagesInFolder(URL(fileURLWithPath: input))
                    if found.isEmpty { missing.append(input) }
                    found.forEach(add)
                } else {
                    add(URL(fileURLWithPath: input))
                }
            } else if input.contains(where: { "*?[".contains($0) }) {
                let matches = glob(input)
                if matches.isEmpty { missing.append(input) }
                matches.forEach { add(URL(fileURLWithPath: $0)) }
            } else {
                missing.append(input)
            }
        }
        return (files, missing)
    }

    private func imagesInFolder(_ folder: URL) -> [URL] {
        let keys: [URLResourceKey] = [.isRegularFileKey]
        var found: [URL] = []
        if recursive {
            let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: keys)
            while let url = enumerator?.nextObject() as? URL {
                if ImageIO.fileExtensions.contains(url.pathExtension.lowercased()) { found.append(url) }
            }
        } else {
            let items = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: keys)) ?? []
            found = items.filter { ImageIO.fileExtensions.contains($0.pathExtension.lowercased()) }
        }
        return found.sorted { $0.path < $1.path }
    }

    private func glob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { result.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }
}

/// `--output-dir`, where per-image outputs go.
struct OutputOptions: ParsableArguments {
    @Option(name: .long, help: "Folder for the outputs (created with the first output).")
    var outputDir = "dino-output"

    /// The folder; it is created when the first image's files are written, so a run that writes
    /// nothing leaves nothing behind.
    var folder: URL { URL(fileURLWithPath: outputDir) }
}
