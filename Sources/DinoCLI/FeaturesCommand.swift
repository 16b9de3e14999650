import ArgumentParser
import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Foundation

/// `dino features`: backbone feature maps for images, or for a tensor of normalised pixels.
struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Compute feature maps (and CLS / register tokens) for images or pixel tensors.",
        discussion: """
            Images: every input image gets OUTPUT_DIR/<name>.safetensors (or <name>.<tensor>.npy \
            files with --format npy) holding:

              feature_maps.<stage>   [1, C, H/p, W/p] per selected stage (or [1, N, C] with --no-reshape)
              cls_token              [1, C], the final-normed CLS token
              register_tokens        [1, R, C], final-normed, with --registers

            Pixel tensors (--pixels IN --output OUT.safetensors): normalised pixels [B, 3, H, W] \
            from a .npy or the 'pixel_values' tensor of a .safetensors, and OUT gets:

              last_hidden_state      [B, N, C], tokens [CLS, registers, patches]
              pooler_output          [B, C]
              feature_maps.<stage>   [B, C, H/p, W/p], or [B, N, C] with --no-reshape
              hidden_states.<k>      [B, N, C], k = 0..L, with --hidden-states
              attentions.<i>         [B, heads, N, N], with --attentions
              logits                 [B, labels], classification checkpoints only

            Stages default to the model's config.json (out_features / out_indices, else the \
            last stage). Images are resized with --resize 448 unless another preset is given. \
            Output files appear only when complete; a failing image is reported and skipped, and \
            the exit code is 1 if any failed.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var images: ImageInputOptions
    @OptionGroup var preprocess: PreprocessOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: "Input pixels [B, 3, H, W], already normalised: a .npy, or a .safetensors holding 'pixel_values'.")
    var pixels: String?

    @Option(name: .long, help: "With --pixels: a .npy of [B, h * w] (bool or numbers; non-zero masks the patch), HF's bool_masked_pos: masked patches take the mask token.")
    var mask: String?

    @Option(name: .customLong("output"), help: "Output .safetensors file for --pixels.")
    var outputFile: String?

    @Option(name: .long, parsing: .unconditional, help: "Stages to return by name, comma-separated (e.g. stage2,stage12).")
    var outFeatures: String?

    @Option(name: .long, parsing: .unconditional, help: "Stages to return by index into [stem, stage1, ...], comma-separated (e.g. 2,12; negative counts from the end).")
    var outIndices: String?

    @Flag(name: .long, help: "Do not apply the final layernorm to the feature maps.")
    var noLayernorm = false

    @Flag(name: .long, help: "Keep feature maps as [B, N, C] tokens (CLS and registers included).")
    var noReshape = false

    @Flag(name: .long, help: "With --pixels: also write every hidden state.")
    var hiddenStates = false

    @Flag(name: .long, help: "With --pixels: also write every block's attention probabilities.")
    var attentions = false

    @Flag(name: .long, help: "With images: also write the register tokens.")
    var registers = false

    @Option(name: .long, help: "With images: safetensors (one file per image) or npy (one file per tensor).")
    var format: OutputFormat = .safetensors

    enum OutputFormat: String, ExpressibleByArgument {
        case safetensors, npy
    }

    func validate() throws {
        if pixels != nil {
            guard let outputFile, outputFile.hasSuffix(".safetensors") else {
                throw ValidationError("--pixels needs --output FILE.safetensors")
            }
            if !images.inputs.isEmpty { throw ValidationError("give either image inputs or --pixels, not both") }
        } else {
            if images.inputs.isEmpty { throw ValidationError("give image files, folders or globs, or --pixels") }
            if let outputFile {
                throw ValidationError("--output \(outputFile) goes with --pixels; the outputs of images go to --output-dir DIR")
            }
            if hiddenStates || attentions { throw ValidationError("--hidden-states and --attentions go with --pixels") }
            if mask != nil { throw ValidationError("--mask goes with --pixels") }
        }
    }

    private func stageArguments() throws -> (features: [String]?, indices: [Int]?) {
        let indices = try outIndices.map { text in
            try text.split(separator: ",").map { part -> Int in
                guard let value = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--out-indices must be comma-separated integers, got \(text)")
                }
                return value
            }
        }
        let features = outFeatures.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        return (features, indices)
    }

    func run() throws {
        let (vit, folder) = try modelOptions.load()
        let stages = try stageArguments()
        let backbone = try Backbone(
            model: vit, outFeatures: stages.features, outIndices: stages.indices,
            applyLayernorm: noLayernorm ? false : nil, reshapeHiddenStates: noReshape ? false : nil)
        if let pixels, let outputFile {
            try runPixels(backbone, pixels: pixels, output: outputFile)
        } else {
            try runImages(backbone, modelFolder: folder)
        }
    }

    private func runPixels(_ backbone: Backbone, pixels: String, output: String) throws {
        let pixelsURL = URL(fileURLWithPath: pixels)
        let input = pixels.hasSuffix(".safetensors")
            ? try SafetensorsFile(url: pixelsURL).tensor("pixel_values") : try NumpyFile.read(pixelsURL)
        let layers = backbone.model.configuration.numHiddenLayers
        let options = ForwardOptions(outputHiddenStates: hiddenStates, outputAttentions: attentions)
        let maskedPatches = try mask.map { try NumpyFile.read(URL(fileURLWithPath: $0)) }
        let pass = try backbone.model.features(input, request: backbone.featureRequest.union(options.request(layers: layers)),
                                               maskedPatches: maskedPatches)
        let result = try backbone.predict(pass)
        let last = try pass.stage(layers, normalized: true)
        var tensors: [(name: String, tensor: Tensor)] = [
            ("last_hidden_state", last.tokens),
            ("pooler_output", last.classToken),
        ]
        for (stage, map) in zip(result.stageNames, result.featureMaps) { tensors.append(("feature_maps.\(stage)", map)) }
        for (k, state) in (result.hiddenStates ?? []).enumerated() { tensors.append(("hidden_states.\(k)", state)) }
        for (i, map) in (result.attentions ?? []).enumerated() { tensors.append(("attentions.\(i)", map)) }
        if let logits = pass.logits { tensors.append(("logits", logits)) }
        try SafetensorsFile.write(tensors, metadata: [
            "model": modelOptions.model, "stages": result.stageNames.joined(separator: ","),
            "grid": "\(result.gridSize.height)x\(result.gridSize.width)",
        ], to: URL(fileURLWithPath: output))
    }

    private func runImages(_ backbone: Backbone, modelFolder: URL) throws {
        let config = backbone.model.configuration
        let preset = try preprocess.preset(modelFolder: modelFolder, fallback: .resize(shortSide: 448))
        let outputFolder = output.folder
        let names = backbone.outFeatures.map { "feature_maps.\($0)" } + ["cls_token"] + (registers ? ["register_tokens"] : [])
        let suffixes = format == .safetensors ? [".safetensors"] : names.map { ".\($0).npy" }
        var runner = ImageRunner(inputs: images, preparation: preset, patchSize: config.patchSize, label: "features",
                                 outputs: OutputPlan(folder: outputFolder, suffixes: suffixes))
        let layers = config.numHiddenLayers
        runner.run { batch in
            let pixels = Tensor.stack(batch.map(\.prepared.pixels))
            let pass = try backbone.model.features(pixels, request: backbone.featureRequest.union(.lastHiddenState(layers: layers)))
            let result = try backbone.predict(pass)
            let last = try pass.stage(layers, normalized: true)
            let (classTokens, registerTokens) = (last.classToken, last.registerTokens)
            var failed: [(ImageItem, String)] = []
            for (i, item) in batch.enumerated() {
                var tensors: [(name: String, tensor: Tensor)] = []
                for (stage, map) in zip(result.stageNames, result.featureMaps) {
                    tensors.append(("feature_maps.\(stage)", Tensor.stack([map[i]])))
                }
                tensors.append(("cls_token", Tensor.stack([classTokens[i]])))
                if registers { tensors.append(("register_tokens", Tensor.stack([registerTokens[i]]))) }
                let metadata = [
                    "image": item.url.path, "model": modelOptions.model, "preprocessing": preset.summary,
                    "image_size": "\(item.image.width)x\(item.image.height)",
                    "grid": "\(result.gridSize.height)x\(result.gridSize.width)",
                ]
                let files = ImageOutputFiles(folder: outputFolder, stem: item.outputStem)
                do {
                    switch format {
                    case .safetensors:
                        try SafetensorsFile.write(tensors, metadata: metadata, to: files.url(".safetensors"))
                    case .npy:
                        for (name, tensor) in tensors { try NumpyFile.write(tensor, to: files.url(".\(name).npy")) }
                    }
                    try files.commit()
                } catch {
                    files.discard()
                    failed.append((item, "\(error)"))
                }
            }
            return failed
        }
        try runner.finish()
    }
}
