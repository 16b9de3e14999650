import ArgumentParser

/// Placeholder for `dino discover`; replaced by the head's implementation.
struct DiscoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "discover", abstract: "(in progress)")
}
