import DinoModel
import Foundation

/// Why object discovery or its evaluation could not run.
public enum DiscoveryError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// Features whose size does not fit the patch grid.
    case featureShape(expected: [Int], actual: [Int])
    /// A feature value that is NaN or infinite.
    case nonFiniteFeature(patch: Int, channel: Int)
    /// A method parameter out of its range.
    case invalidParameter(name: String, value: String, expected: String)
    /// The model output lacks the query/key/value projections of a block.
    case missingProjections(block: Int, available: [Int])
    /// The seed patch is not in the foreground mask (LOST raises the same error).
    case seedInBackground(row: Int, column: Int)
    /// The image has fewer patches than the method needs.
    case tooFewPatches(count: Int, needed: Int)
    /// LAPACK reported a failure.
    case eigensolverFailed(routine: String, info: Int)
    /// A dataset file or folder does not exist.
    case missingFile(path: String)
    /// A dataset file exists but cannot be read or parsed.
    case unreadableFile(path: String, reason: String)
    /// An annotation lacks a field or has one of the wrong form (`actual` is "missing" or the quoted text).
    case invalidAnnotation(file: String, key: String, expected: String, actual: String)
    /// An image has more patches than the discovery limit (the Gram matrix grows with their square).
    case tooManyPatches(width: Int, height: Int, patches: Int, limit: Int)
    /// The forward pass failed.
    case model(DinoModelError)

    /// A message naming the file, key or setting and what was expected.
    public var description: String {
        switch self {
        case let .featureShape(expected, actual): return "features have shape \(actual), expected \(expected)"
        case let .nonFiniteFeature(patch, channel): return "feature of patch \(patch), channel \(channel) is not finite"
        case let .invalidParameter(name, value, expected): return "\(name) is \(value), expected \(expected)"
        case let .missingProjections(block, available):
            return "the backbone pass has no query/key/value projections of block \(block) (has \(available.sorted())); "
                + "add block \(block) to its FeatureRequest's projectionBlocks"
        case let .seedInBackground(row, column):
            return "the seed patch (row \(row), column \(column)) is not in the foreground mask; with a negative Gram bias, "
                + "the seed's own similarity can fall below zero: use a smaller |bias|"
        case let .tooFewPatches(count, needed): return "the image has \(count) patches; the method needs at least \(needed)"
        case let .eigensolverFailed(routine, info): return "LAPACK \(routine) failed (info \(info))"
        case let .missingFile(path): return "\(path): no such file or folder"
        case let .unreadableFile(path, reason): return "\(path): \(reason)"
        case let .invalidAnnotation(file, key, expected, actual):
            return "\(file): '\(key)' is \(actual), expected \(expected)"
        case let .tooManyPatches(width, height, patches, limit):
            return "\(width)x\(height) pixels are \(patches) patches, more than --max-patches \(limit); give --resize SHORT or raise --max-patches"
        case let .model(error): return error.description
        }
    }

    /// The same as `description`.
    public var errorDescription: String? { description }
}
