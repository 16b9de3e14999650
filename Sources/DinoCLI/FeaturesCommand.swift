import ArgumentParser
import DinoModel
import DinoTensor
import Foundation

/// `dino features`: backbone feature maps for a tensor of normalised pixels.
struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Compute feature maps, hidden states and attentions for pixel tensors.",
        discussion: """
            Reads normalised pixels [B, 3, H, W] (H and W multiples of the patch size) from a \
            .npy, or from the 'pixel_values' tensor of a .safetensors file, and writes one \
            .safetensors file of F32 tensors:

              last_hidden_state      [B, N, C], tokens [CLS, registers, patches]
              pooler_output          [B, C]
              feature_maps.<stage>   [B, C, H/p, W/p], or [B, N, C] with --no-reshape
              hidden_states.<k>      [B, N, C], k = 0..L, with --hidden-states
              attentions.<i>         [B, heads, N, N], with --attentions
              logits                 [B, labels], classification checkpoints only

            Stages default to the model's config.json (out_features / out_indices, else the \
            last stage). The output file appears only when it is complete.
            """)

    @Option(name: .long, help: "Model folder: config.json and model.safetensors (or a sharded index).")
    var model: String

    @Option(name: .long, help: "Input pixels [B, 3, H, W], already normalised: a .npy, or a .safetensors holding 'pixel_values'.")
    var pixels: String

    @Option(name: .long, help: "Output .safetensors file.")
    var output: String

    @Option(name: .long, parsing: .unconditional, help: "Stages to return by name, comma-separated (e.g. stage2,stage12).")
    var outFeatures: String?

    @Option(name: .long, parsing: .unconditional, help: "Stages to return by index into [stem, stage1, ...], comma-separated (e.g. 2,12; negative counts from the end).")
    var outIndices: String?

    @Flag(name: .long, help: "Do not apply the final layernorm to the feature maps.")
    var noLayernorm = false

    @Flag(name: .long, help: "Keep feature maps as [B, N, C] tokens (CLS and registers included).")
    var noReshape = false

    @Flag(name: .long, help: "Also write every hidden state.")
    var hiddenStates = false

    @Flag(name: .long, help: "Also write every block's attention probabilities.")
    var attentions = false

    @Option(name: .long, help: "GEMM threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        guard output.hasSuffix(".safetensors") else {
            throw ValidationError("--output must end in .safetensors, got \(output)")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        ComputeThreads.set(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let indices = try outIndices.map { text in
            try text.split(separator: ",").map { part -> Int in
                guard let value = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--out-indices must be comma-separated integers, got \(text)")
                }
                return value
            }
        }
        let features = outFeatures.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

        let vit = try VisionTransformer(directory: URL(fileURLWithPath: model))
        let backbone = try Backbone(
            model: vit, outFeatures: features, outIndices: indices,
            applyLayernorm: noLayernorm ? false : nil, reshapeHiddenStates: noReshape ? false : nil)
        let pixelsURL = URL(fileURLWithPath: pixels)
        let input = pixels.hasSuffix(".safetensors")
            ? try SafetensorsFile(url: pixelsURL).tensor("pixel_values") : try NumpyFile.read(pixelsURL)
        let result = try backbone(input, outputHiddenStates: hiddenStates, outputAttentions: attentions)

        var tensors: [(name: String, tensor: Tensor)] = [
            ("last_hidden_state", result.model.lastHiddenState),
            ("pooler_output", result.model.poolerOutput),
        ]
        for (stage, map) in zip(result.stageNames, result.featureMaps) { tensors.append(("feature_maps.\(stage)", map)) }
        for (k, state) in (result.hiddenStates ?? []).enumerated() { tensors.append(("hidden_states.\(k)", state)) }
        for (i, map) in (result.attentions ?? []).enumerated() { tensors.append(("attentions.\(i)", map)) }
        if let logits = result.model.logits { tensors.append(("logits", logits)) }
        try SafetensorsFile.write(tensors, metadata: [
            "model": model, "stages": result.stageNames.joined(separator: ","),
            "grid": "\(result.gridSize.height)x\(result.gridSize.width)",
        ], to: URL(fileURLWithPath: output))
    }
}
