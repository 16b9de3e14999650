import Foundation

/// A checkpoint split over several safetensors files by a `model.safetensors.index.json`
/// (`{"metadata": {...}, "weight_map": {"tensor name": "shard file name"}}`), as
/// `save_pretrained` writes it.
///
/// Every shard named by the index is opened and checked: each tensor of the map must be in its
/// shard, and each tensor of a shard must be in the map.
public final class ShardedSafetensors: TensorSource {
    /// The index file's path.
    public let indexPath: String
    /// The opened shards, by file name.
    public let shards: [String: SafetensorsFile]
    private let weightMap: [String: String]
    private let order: [String]

    /// Opens the index at `url` and every shard it names (shards are looked up beside it).
    public init(indexURL url: URL) throws(TensorFileError) {
        let path = url.path
        let data = try InputFile.contents(of: url)
        let json: JSONValue
        do {
            json = try JSONValue.parse(data)
        } catch {
            throw .invalidHeader(path: path, reason: error.description)
        }
        guard let map = json["weight_map"]?.objectValue else {
            throw .invalidHeader(path: path, reason: "no \"weight_map\" object")
        }
        var weightMap: [String: String] = [:]
        var order: [String] = []
        // Each shard once, in order of first mention, with its path checked once.
        var shardNames: [String] = []
        var shardURLs: [String: URL] = [:]
        let folder = url.deletingLastPathComponent()
        for (tensor, value) in map {
            guard let file = value.stringValue else {
                throw .invalidHeader(path: path, reason: "weight_map entry for '\(tensor)' is not a file name")
            }
            if shardURLs[file] == nil {
                shardURLs[file] = try InputFile.confined(file, in: folder, source: path)
                shardNames.append(file)
            }
            weightMap[tensor] = file
            order.append(tensor)
        }
        var shards: [String: SafetensorsFile] = [:]
        for name in shardNames {
            guard let shardURL = shardURLs[name] else { continue }
            let shard = try SafetensorsFile(url: shardURL)
            for tensor in shard.tensorNames {
                guard let listed = weightMap[tensor] else {
                    throw .invalidHeader(path: shard.path, reason: "tensor '\(tensor)' is not listed in \(url.lastPathComponent)")
                }
                guard listed == name else { throw .duplicateTensor(path: shard.path, tensor: tensor) }
            }
            shards[name] = shard
        }
        for tensor in order {
            guard let file = weightMap[tensor], let shard = shards[file], (try? shard.entry(tensor)) != nil else {
                throw .missingTensor(path: folder.appendingPathComponent(weightMap[tensor] ?? "?").path, tensor: tensor)
            }
        }
        self.indexPath = path
        self.shards = shards
        self.weightMap = weightMap
        self.order = order
    }

    public var tensorNames: [String] { order }

    private func shard(for name: String) throws(TensorFileError) -> SafetensorsFile {
        guard let file = weightMap[name], let shard = shards[file] else {
            throw .missingTensor(path: indexPath, tensor: name)
        }
        return shard
    }

    public func shape(of name: String) throws(TensorFileError) -> [Int] { try shard(for: name).shape(of: name) }

    public func tensor(_ name: String) throws(TensorFileError) -> Tensor { try shard(for: name).tensor(name) }

    public func location(of name: String) -> String {
        (try? shard(for: name).path) ?? indexPath
    }
}
