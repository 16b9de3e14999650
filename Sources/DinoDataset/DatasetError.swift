import Foundation

/// Why a dataset input, a shard setting, a shard's outputs or a set of manifests was refused.
///
/// Every case names the file (tar, list, manifest or output) and, where it applies, the key,
/// offset or setting, with what was expected and what was found.
public enum DatasetError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// A file or folder could not be read.
    case cannotRead(path: String, reason: String)
    /// An input names nothing that exists.
    case missingInput(path: String)
    /// An input is of a kind this reader does not take (names the input and what to do).
    case unsupportedInput(path: String, reason: String)
    /// A brace pattern such as `{00000..01023}` is malformed or expands too far.
    case invalidBraces(pattern: String, reason: String)
    /// A tar header is not valid (bad checksum, bad number field, bad pax record) at `offset`.
    case invalidTar(path: String, offset: Int, reason: String)
    /// A tar ends before its last member or its end-of-archive blocks.
    case truncatedTar(path: String, offset: Int, reason: String)
    /// One sample key appears twice in the input (two tar groups, two list lines or two files).
    case duplicateKey(key: String, first: String, second: String)
    /// A tar member is larger than the limit read into memory.
    case memberTooLarge(path: String, member: String, size: Int, limit: Int)
    /// A sharding setting (`--shard`, `--shard-count`, `--chunk-size` or a scheduler variable) is
    /// malformed or inconsistent.
    case invalidShard(setting: String, reason: String)
    /// A manifest cannot be parsed, or lacks a field or has one of the wrong type.
    case invalidManifest(path: String, reason: String)
    /// A manifest disagrees with the other manifests, or with the run resuming it, on a setting
    /// that must be equal (`actual` is the manifest's value).
    case incompatibleSettings(path: String, field: String, expected: String, actual: String)
    /// The shard's manifest already exists and `--resume` was not given.
    case existingRun(path: String)
    /// No manifest was found for a shard index of the run.
    case missingShard(index: Int, count: Int, searched: String)
    /// Two manifests claim the same shard index.
    case duplicateShard(index: Int, first: String, second: String)
    /// A shard has not finished a unit it owns, so that unit's keys are missing.
    case unfinishedUnit(manifest: String, unit: Int, source: String)
    /// A unit's output holds fewer or more keys than its input had.
    case missingKeys(source: String, expected: Int, actual: Int)
    /// Keys failed to decode or prepare; the first few are listed.
    case failedKeys(count: Int, examples: [String])
    /// An output file differs from what its manifest records.
    case outputMismatch(path: String, field: String, expected: String, actual: String)
    /// A file could not be written.
    case writeFailed(path: String, reason: String)

    /// The message: the file, key or setting, and what is wrong.
    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "\(path): cannot read: \(reason)"
        case let .missingInput(path): return "\(path): no such file or folder"
        case let .unsupportedInput(path, reason): return "\(path): \(reason)"
        case let .invalidBraces(pattern, reason): return "brace pattern '\(pattern)': \(reason)"
        case let .invalidTar(path, offset, reason): return "\(path): invalid tar header at byte \(offset): \(reason)"
        case let .truncatedTar(path, offset, reason): return "\(path): truncated tar at byte \(offset): \(reason)"
        case let .duplicateKey(key, first, second): return "key '\(key)' appears twice: in \(first) and in \(second)"
        case let .memberTooLarge(path, member, size, limit):
            return "\(path): member \(member) has \(size) bytes, over the limit of \(limit) bytes"
        case let .invalidShard(setting, reason): return "\(setting): \(reason)"
        case let .invalidManifest(path, reason): return "\(path): invalid manifest: \(reason)"
        case let .incompatibleSettings(path, field, expected, actual):
            return "\(path): \(field) is \(actual), expected \(expected) (every shard of a run must have the same)"
        case let .existingRun(path):
            return "\(path) exists: this shard has run here before; pass --resume to continue it, or choose another --output-dir"
        case let .missingShard(index, count, searched):
            return "no manifest for shard \(index)/\(count) in \(searched): run that shard (with --resume if it started)"
        case let .duplicateShard(index, first, second): return "shard \(index) has two manifests: \(first) and \(second)"
        case let .unfinishedUnit(manifest, unit, source):
            return "\(manifest): unit \(unit) (\(source)) is not finished, so its keys are missing; rerun that shard with --resume"
        case let .missingKeys(source, expected, actual): return "\(source): expected \(expected) keys, found \(actual)"
        case let .failedKeys(count, examples):
            return "\(count) key(s) failed and have no features, e.g. \(examples.joined(separator: "; ")) (merge --allow-failures indexes the rest)"
        case let .outputMismatch(path, field, expected, actual):
            return "\(path): \(field) is \(actual), the manifest records \(expected)"
        case let .writeFailed(path, reason): return "\(path): cannot write: \(reason)"
        }
    }

    /// The message, for Foundation's error reporting.
    public var errorDescription: String? { description }
}
