import ArgumentParser
import DinoCompute
import DinoDataset
import DinoHub
import DinoImage
import DinoModel
import DinoTensor
import Foundation

/// `dino extract`: pooled features for a whole dataset, as shards of a scheduler's job array.
struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Extract pooled features for a dataset (file lists, folders, WebDataset tars) in shards, and merge the shards.",
        discussion: """
            dino extract [run] --model M INPUTS... --output-dir OUT [--shard I/N] [--resume]
            dino extract merge OUT [--index OUT/index.json]

            Each shard writes OUT/<unit>.safetensors per unit it owns and OUT/manifest-IIIII-of-NNNNN.json; \
            merge checks every manifest and writes one index (key -> file, row). See \
            Examples/cluster/README.md for Slurm and Kubernetes recipes.
            """,
        subcommands: [Run.self, Merge.self],
        defaultSubcommand: Run.self)
}

extension ExtractCommand {
    /// Runs one shard of the extraction.
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run one shard: features for the units it owns, an output per unit and a manifest.",
            discussion: """
                Inputs ('shards/{00000..01023}.tar' brace ranges are expanded; quote them):
                  *.tar        WebDataset shard, read in place; members grouped by key (the
                               path up to the first dot of the file name); the image is the
                               key's jpg/jpeg/png/webp/bmp/tif/tiff member
                  a folder     its images, recursively, sorted; key = path in the folder
                  an image     itself; key = the path as written
                  other files  a file list, one image path per line, relative to the
                               list's folder; key = the line as written

                Sharding: the input is a list of units, each tar (in input order), then the \
                image files in chunks of --chunk-size. Shard I of N owns the units u with \
                u mod N = I. The shard is --shard I/N, else SLURM_ARRAY_TASK_ID (out of \
                --shard-count, SLURM_ARRAY_TASK_COUNT or MIN..MAX), else JOB_COMPLETION_INDEX \
                (out of --shard-count), else 0/1.

                Outputs in --output-dir: <tar name>.safetensors or files-NNNNN.safetensors per unit:
                  cls_token           [K, C] final-normed CLS token (HF pooler_output)
                  patch_mean          [K, C] mean final-normed patch token (--patch-mean)
                  stage_mean.<stage>  [K, C] spatial mean of a stage map (--out-features)
                with the K keys (input order; failed keys have no row) as a JSON array in the \
                'keys' metadata; and manifest-IIIII-of-NNNNN.json, rewritten after each unit.

                Images are resized with --resize 224 unless another preset is given; --size HxW \
                or --classification make every batch full. Files are written atomically. \
                SIGINT/SIGTERM stop after the current batch (exit 128+signal); a stop, even by \
                SIGKILL, loses at most the unit in progress, and --resume skips finished units.
                """)

        @OptionGroup var modelOptions: ModelOptions
        @OptionGroup var preprocess: PreprocessOptions

        @Argument(help: "Tar shards (brace ranges allowed), folders, image files or file lists.")
        var inputs: [String] = []

        @Option(name: .long, help: "Folder for the outputs and the manifest (created if missing; shared by all shards).")
        var outputDir: String

        @Option(name: .long, help: "This process's shard, I/N with 0 <= I < N (default: from Slurm or Kubernetes, else 0/1).")
        var shard: String?

        @Option(name: .long, help: "Number of shards when the index comes from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID.")
        var shardCount: Int?

        @Option(name: .long, help: "Image files per unit (tars are one unit each).")
        var chunkSize = 1000

        @Option(name: .long, help: "Images per forward pass (images of one prepared size are batched together).")
        var batchSize = 16

        @Option(name: .long, help: "Threads decoding and resizing images while the model runs (default: half the cores, 1 to 4); 0 decodes in line.")
        var decodeThreads: Int?

        @Option(name: .long, help: "Largest image accepted, in pixels, checked from the header before decoding (the decoder reads at most 2^30 pixels, 2^20 a side).")
        var maxPixels = ImageIO.defaultMaxPixels

        @Flag(name: .long, help: "Continue the shard's earlier run in --output-dir: finished units are skipped.")
        var resume = false

        @Flag(name: .long, help: "Also write patch_mean, the mean of the final-normed patch tokens.")
        var patchMean = false

        @Option(name: .long, parsing: .unconditional, help: "Also write stage_mean.<stage> for these stages, comma-separated (e.g. stage9,stage12).")
        var outFeatures: String?

        func validate() throws {
            if inputs.isEmpty { throw ValidationError("give tar shards, folders, image files or file lists") }
            if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
            if chunkSize < 1 { throw ValidationError("--chunk-size must be at least 1") }
            if let decodeThreads, decodeThreads < 0 { throw ValidationError("--decode-threads must be 0 or more") }
            if maxPixels < 1 { throw ValidationError("--max-pixels must be at least 1") }
        }

        func run() throws {
            let (shard, shardSource) = try ShardSpec.resolve(explicit: shard, count: shardCount, environment: ProcessInfo.processInfo.environment)
            let plan = try DatasetPlan(inputs: inputs, chunkSize: chunkSize)
            let (vit, folder) = try modelOptions.load()
            let config = vit.configuration
            let stages = outFeatures.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
            let backbone = stages.isEmpty ? nil : try Backbone(model: vit, outFeatures: stages, reshapeHiddenStates: true)
            let preset = try preprocess.preset(modelFolder: folder, fallback: .resize(shortSide: 224))
            let c = config.hiddenSize
            var columns = [FeatureColumn(name: "cls_token", width: c)]
            if patchMean { columns.append(FeatureColumn(name: "patch_mean", width: c)) }
            columns += (backbone?.outFeatures ?? []).map { FeatureColumn(name: "stage_mean.\($0)", width: c) }
            let settings = ExtractionSettings(
                model: modelOptions.model, modelType: config.modelType, hiddenSize: c, patchSize: config.patchSize,
                registers: config.numRegisterTokens, preprocessing: preset.summary, features: columns)
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let decoders = decodeThreads ?? max(1, min(4, cores / 2))
            let options = RunOptions(
                preparation: PreparationOptions(preprocessing: preset, patchSize: config.patchSize, maxPixels: maxPixels),
                batchSize: batchSize, decodeThreads: decoders, threads: ComputeThreads.current, resume: resume)
            let outputFolder = URL(fileURLWithPath: outputDir)
            let runner = ShardRunner(plan: plan, shard: shard, folder: outputFolder, settings: settings, options: options,
                                     digest: SHA256Hasher.hex(ofFileAt:))
            let mine = plan.units(of: shard)
            printError("extract shard \(shard) (from \(shardSource)): \(mine.count) of \(plan.units.count) units; "
                       + "\(preset.summary); batch \(batchSize), \(ComputeThreads.current) compute + \(decoders) decode threads")

            let extract: ShardRunner.Extract = { pixels in
                let layers = config.numHiddenLayers
                let request = FeatureRequest.lastHiddenState(layers: layers).union(backbone?.featureRequest ?? FeatureRequest())
                let pass = try vit.features(pixels, request: request)
                let last = try pass.stage(layers, normalized: true)
                var result = [last.classToken]
                if patchMean { result.append(last.patchTokens.tokenMean()) }
                result += try (backbone?.predict(pass).featureMaps ?? []).map { $0.spatialMean() }
                return result
            }

            let knownTotal = mine.allSatisfy { if case .files = $0.source { return true } else { return false } }
            let imageTotal = knownTotal ? mine.reduce(0) { total, unit in
                if case .files(let items) = unit.source { return total + items.count }
                return total
            } : 0
            let progress = ProgressBar(label: "extract \(shard)", total: imageTotal)
            var shown = 0
            var skipped = 0
            Interruption.install()
            let summary = try runner.run(extract: extract, events: { event in
                switch event {
                case .unitSkipped: skipped += 1
                case let .unitFinished(unit, record):
                    let failed = record.failures.isEmpty ? "" : ", \(record.failures.count) failed"
                    printError(String(format: "done %@ -> %@: %d keys%@, %.1f s", unit.name, record.output, record.rows, failed, record.seconds))
                case let .unitFailed(unit, reason):
                    printError("error: unit \(unit.index) (\(unit.name)): \(reason)")
                case let .keyFailed(_, failure):
                    printError("error: \(failure.key): \(failure.reason)")
                case let .progress(images):
                    progress.advance(images - shown)
                    shown = images
                case let .warning(text):
                    printError("warning: \(text)")
                }
            }, stopSignal: { Interruption.signal })
            progress.finish()
            Self.report(summary, shard: shard, skipped: skipped, manifest: runner.manifestURL)
            if let signal = Interruption.signal { throw ExitCode(128 + signal) }
            if summary.failedKeys > 0 || summary.failedUnits > 0 { throw ExitCode(1) }
        }

        private static func report(_ summary: RunSummary, shard: ShardSpec, skipped: Int, manifest: URL) {
            let busy = summary.seconds > 0 ? 100 * summary.inferenceSeconds / summary.seconds : 0
            var text = String(
                format: "extract shard %@: %d images in %d units, %d failed, %.2f s, %.2f images/s on %@ (model busy %.0f%%, waited %.2f s for images)",
                shard.description, summary.images, summary.finishedUnits, summary.failedKeys, summary.seconds, summary.imagesPerSecond,
                ProcessInfo.processInfo.hostName, busy, summary.waitSeconds)
            if skipped > 0 { text += "; \(skipped) units already done (--resume)" }
            if summary.failedUnits > 0 { text += "; unreadable units: \(summary.failedUnits) (retried by --resume)" }
            if let signal = Interruption.signal {
                text += "; interrupted by signal \(signal): rerun with --resume to continue"
            } else if summary.manifest.isComplete {
                text += "; shard complete"
            }
            printError(text + "; manifest \(manifest.path)")
        }
    }

    /// Checks the shards' manifests and writes the merged index.
    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "merge",
            abstract: "Check every shard's manifest and outputs and write one index of key -> (file, row).",
            discussion: """
                Refuses, naming the file and what differs: manifests of different settings, inputs or \
                shard counts; a shard missing or present twice; a unit not finished; an output whose \
                size, SHA-256, keys or shapes differ from its manifest; a key missing or appearing twice; \
                keys that failed to decode (unless --allow-failures).

                The index (JSON): format, settings, shards, count, files [{path, rows, sha256}] (paths \
                relative to the index's folder), keys [[key, file number, row], ...] in unit order, failures.
                """)

        @Argument(help: "Output folders of the shards (or manifest files).")
        var locations: [String]

        @Option(name: .long, help: "Where to write the index (default: index.json in the first folder).")
        var index: String?

        @Flag(name: .long, help: "Index the keys that have features even if some keys failed to decode (they are listed).")
        var allowFailures = false

        func validate() throws {
            if locations.isEmpty { throw ValidationError("give the output folder(s) of the shards, or their manifest files") }
        }

        func run() throws {
            let manifests = try ManifestMerge.manifests(in: locations)
            let indexURL: URL
            if let index {
                indexURL = URL(fileURLWithPath: index)
            } else {
                var isDirectory: ObjCBool = false
                let first = locations.first ?? "."
                let folder = FileManager.default.fileExists(atPath: first, isDirectory: &isDirectory) && isDirectory.boolValue
                    ? URL(fileURLWithPath: first) : URL(fileURLWithPath: first).deletingLastPathComponent()
                indexURL = folder.appendingPathComponent("index.json")
            }
            let merged = try ManifestMerge.merge(manifests, indexFolder: indexURL.deletingLastPathComponent(),
                                                 allowFailures: allowFailures, digest: SHA256Hasher.hex(ofFileAt:))
            try merged.write(to: indexURL)
            let failed = merged.failures.isEmpty ? "" : ", \(merged.failures.count) failed keys listed"
            print("merged \(merged.shardCount) shards: \(merged.entries.count) keys in \(merged.files.count) files\(failed) -> \(indexURL.path)")
            for note in merged.notes { print("note: \(note)") }
            for host in merged.hosts {
                print(String(format: "  %@: %d shard(s), %d images, %.2f images/s (sum over its shards' last runs)",
                             host.host, host.shards, host.images, host.imagesPerSecond))
            }
        }
    }
}
