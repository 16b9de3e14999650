import ArgumentParser

/// Placeholder for `dino depth`; replaced by the head's implementation.
struct DepthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "depth", abstract: "(in progress)")
}
