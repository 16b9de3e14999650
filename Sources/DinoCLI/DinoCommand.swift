import ArgumentParser

/// The `dino` command-line tool.
@main
struct DinoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dino",
        abstract: "DINOv2 and DINOv2-with-registers as a dense-prediction backbone.",
        discussion: """
            Loads checkpoints laid out as on the Hugging Face hub (config.json + model.safetensors, \
            HF, original Meta or timm tensor names) and runs them on the CPU.
            """,
        subcommands: [
            FeaturesCommand.self, PCACommand.self, AttentionCommand.self, NormsCommand.self, ClassifyCommand.self,
            SegmentCommand.self, ProbeCommand.self, DepthCommand.self, DiscoverCommand.self, PredictCommand.self, ExtractCommand.self, BenchCommand.self,
        ])
}
