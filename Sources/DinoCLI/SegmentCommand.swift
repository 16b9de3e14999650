import ArgumentParser

/// Placeholder for `dino segment`; replaced by the head's implementation.
struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "segment", abstract: "(in progress)")
}
