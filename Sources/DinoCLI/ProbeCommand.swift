import ArgumentParser

/// Placeholder for `dino probe`; replaced by the head's implementation.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "probe", abstract: "(in progress)")
}
