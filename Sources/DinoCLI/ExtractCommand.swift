import ArgumentParser

/// Placeholder for `dino extract`; replaced by the dataset-scale extraction.
struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "extract", abstract: "(in progress)")
}
