import DinoTensor
import Foundation

/// What a dinov2 depth head needs besides its weights: the depth range it was trained for
/// (its 256 bins span it, and its output is clamped to it) and the backbone blocks it reads.
///
/// The released `.pth` heads carry no range tensor; it lives in the mmcv `_config.py` published
/// beside each head, and follows from the dataset in the file name. `resolve` reads, in order:
/// values given by the caller, a `.safetensors` head's `__metadata__`, the config text in a
/// `.pth`'s `meta`, the `_config.py` beside the head, and the dataset named in the file name.
public struct DepthHeadConfiguration: Codable, Sendable, Equatable {
    /// Smallest depth in metres: the first bin centre and the lower clamp.
    public var minDepth: Float
    /// Largest depth in metres: the last bin centre and the upper clamp.
    public var maxDepth: Float
    /// Backbone blocks the head reads (0-based, as mmcv's `out_indices`), or nil for the
    /// released choice for the backbone's size.
    public var blocks: [Int]?
    /// The training dataset (`nyu`, `kitti`), when known.
    public var dataset: String?

    enum CodingKeys: String, CodingKey {
        case minDepth = "min_depth"
        case maxDepth = "max_depth"
        case blocks = "out_indices"
        case dataset
    }

    /// A configuration from its values.
    public init(minDepth: Float, maxDepth: Float, blocks: [Int]? = nil, dataset: String? = nil) {
        self.minDepth = minDepth
        self.maxDepth = maxDepth
        self.blocks = blocks
        self.dataset = dataset
    }

    /// Depth ranges of the datasets the released heads were trained on (their evaluation presets').
    // ref: dinov2/hub/depthers.py _get_depth_range.
    public static let datasetRanges: [String: (min: Float, max: Float)] = Dictionary(
        uniqueKeysWithValues: DepthEvaluationPreset.all.map { ($0.name, (Float($0.minDepth), Float($0.maxDepth))) })

    /// The lower end when only the upper one is known: dinov2's `DepthBaseDecodeHead` default.
    public static let defaultMinDepth: Float = 1e-3

    /// Values a caller fixes, overriding what the files say.
    public struct Overrides: Sendable, Equatable {
        /// Lower end of the range in metres.
        public var minDepth: Float?
        /// Upper end of the range in metres.
        public var maxDepth: Float?
        /// Backbone blocks to read.
        public var blocks: [Int]?

        /// Overrides from optional values.
        public init(minDepth: Float? = nil, maxDepth: Float? = nil, blocks: [Int]? = nil) {
            self.minDepth = minDepth
            self.maxDepth = maxDepth
            self.blocks = blocks
        }
    }

    /// The configuration of the head stored at `url` (whose tensors `source` holds).
    public static func resolve(headURL url: URL, source: any TensorSource, overrides: Overrides = Overrides()) throws(DepthError) -> DepthHeadConfiguration {
        var found = Partial(minDepth: overrides.minDepth, maxDepth: overrides.maxDepth, blocks: overrides.blocks)
        if let metadata = (source as? SafetensorsFile)?.metadata {
            found.fill(try Partial(metadata: metadata, path: url.path))
        }
        // mmcv keeps the training config's text in the checkpoint's `meta` when the run asked it to.
        if let meta = (source as? TorchCheckpoint)?.metadata, let text = meta["meta"]?["config"]?.stringValue ?? meta["meta.config"]?.stringValue {
            found.fill(Partial(mmcvConfigText: text))
        }
        let config = mmcvConfigURL(for: url)
        if let config, FileManager.default.fileExists(atPath: config.path) {
            found.fill(try Partial(mmcvConfig: config))
        }
        let name = url.deletingPathExtension().lastPathComponent.lowercased()
        if let dataset = datasetRanges.keys.sorted().first(where: { name.contains("_\($0)_") || name.hasPrefix("\($0)_") }) {
            found.dataset = found.dataset ?? dataset
        }
        if let dataset = found.dataset, let range = datasetRanges[dataset] {
            found.fill(Partial(minDepth: range.min, maxDepth: range.max))
        }
        guard let maxDepth = found.maxDepth else { throw .missingDepthRange(file: url.path) }
        let minDepth = found.minDepth ?? defaultMinDepth
        guard minDepth.isFinite, maxDepth.isFinite, minDepth > 0, maxDepth > minDepth else {
            throw .invalidConfiguration(path: url.path, field: "min_depth/max_depth", reason: "need 0 < min_depth < max_depth, got \(minDepth) and \(maxDepth)")
        }
        return DepthHeadConfiguration(minDepth: minDepth, maxDepth: maxDepth, blocks: found.blocks, dataset: found.dataset)
    }

    /// `X_head.pth` -> `X_config.py`, the released naming.
    static func mmcvConfigURL(for url: URL) -> URL? {
        let stem = url.deletingPathExtension().lastPathComponent
        guard stem.hasSuffix("_head") else { return nil }
        return url.deletingLastPathComponent().appendingPathComponent(String(stem.dropLast("_head".count)) + "_config.py")
    }

    /// Fields found so far; `fill` keeps what is already known.
    struct Partial {
        var minDepth: Float?
        var maxDepth: Float?
        var blocks: [Int]?
        var dataset: String?

        mutating func fill(_ other: Partial) {
            minDepth = minDepth ?? other.minDepth
            maxDepth = maxDepth ?? other.maxDepth
            blocks = blocks ?? other.blocks
            dataset = dataset ?? other.dataset
        }

        init(minDepth: Float? = nil, maxDepth: Float? = nil, blocks: [Int]? = nil, dataset: String? = nil) {
            self.minDepth = minDepth
            self.maxDepth = maxDepth
            self.blocks = blocks
            self.dataset = dataset
        }

        /// From safetensors `__metadata__`: `min_depth`, `max_depth` (numbers as text),
        /// `out_indices` (a JSON list), `dataset`.
        init(metadata: [String: String], path: String) throws(DepthError) {
            func number(_ key: String) throws(DepthError) -> Float? {
                guard let text = metadata[key] else { return nil }
                guard let value = Float(text.trimmingCharacters(in: .whitespaces)) else {
                    throw .invalidConfiguration(path: path, field: key, reason: "'\(text)' is not a number")
                }
                return value
            }
            minDepth = try number("min_depth")
            maxDepth = try number("max_depth")
            dataset = metadata["dataset"]?.lowercased()
            if let text = metadata["out_indices"] {
                guard let list = try? JSONValue.parse(Array(text.utf8)).arrayValue, case let ints = list.compactMap(\.intValue), ints.count == list.count else {
                    throw .invalidConfiguration(path: path, field: "out_indices", reason: "'\(text)' is not a JSON list of integers")
                }
                blocks = ints
            }
        }

        /// From an mmcv config (`_config.py`): `min_depth` / `max_depth` of `decode_head=dict(...)`
        /// and `out_indices` of the model's `backbone=dict(...)`.
        init(mmcvConfig url: URL) throws(DepthError) {
            let data: Data
            do {
                data = try InputFile.contents(of: url)
            } catch {
                throw .invalidConfiguration(path: url.path, field: "(file)", reason: error.detail)
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw .invalidConfiguration(path: url.path, field: "(file)", reason: "not UTF-8 text")
            }
            self.init(mmcvConfigText: text)
        }

        /// From the text of an mmcv config.
        init(mmcvConfigText text: String) {
            // The dataset entries carry their own min_depth / max_depth (for evaluation);
            // only the head's count.
            if let head = MMCVConfigText.dictBody(named: "decode_head", in: text[...]) {
                minDepth = MMCVConfigText.number("min_depth", in: head).map(Float.init)
                maxDepth = MMCVConfigText.number("max_depth", in: head).map(Float.init)
            }
            if let model = MMCVConfigText.dictBody(named: "model", in: text[...]), let backbone = MMCVConfigText.dictBody(named: "backbone", in: model) {
                blocks = MMCVConfigText.integerList("out_indices", in: backbone)
            }
        }
    }
}

/// Just enough of mmcv's `pretty_text` config format (Python literals) to read a few fields.
enum MMCVConfigText {
    /// The text between the parentheses of the first `name=dict(...)` (or `name = dict(`).
    static func dictBody(named name: String, in text: Substring) -> Substring? {
        var search = text
        while let range = search.range(of: name) {
            defer { search = search[range.upperBound...] }
            // A whole word: not the tail of another name such as `auxiliary_decode_head`.
            if range.lowerBound > text.startIndex, let before = text[..<range.lowerBound].last, before.isLetter || before.isNumber || before == "_" {
                continue
            }
            var rest = text[range.upperBound...].drop { $0 == " " }
            guard rest.first == "=" else { continue }
            rest = rest.dropFirst().drop { $0 == " " }
            guard rest.hasPrefix("dict(") else { continue }
            let open = rest.index(rest.startIndex, offsetBy: 4)
            var depth = 0
            var index = open
            while index < rest.endIndex {
                switch rest[index] {
                case "(", "[", "{": depth += 1
                case ")", "]", "}":
                    depth -= 1
                    if depth == 0 { return rest[rest.index(after: open)..<index] }
                default: break
                }
                index = rest.index(after: index)
            }
            return nil
        }
        return nil
    }

    /// The value of `key=<number>` at the top level of a dict body.
    static func number(_ key: String, in body: Substring) -> Double? {
        guard let value = topLevelValue(key, in: body) else { return nil }
        return Double(value.prefix { "0123456789.eE+-".contains($0) })
    }

    /// The value of `key=[i, j, ...]` at the top level of a dict body.
    static func integerList(_ key: String, in body: Substring) -> [Int]? {
        guard let value = topLevelValue(key, in: body), value.first == "[" || value.first == "(",
              let end = value.firstIndex(where: { $0 == "]" || $0 == ")" }) else { return nil }
        let items = value[value.index(after: value.startIndex)..<end].split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        let ints = items.filter { !$0.isEmpty }.compactMap { Int($0) }
        return ints.count == items.filter({ !$0.isEmpty }).count ? ints : nil
    }

    /// The text after `key=` when `key` appears outside nested brackets.
    private static func topLevelValue(_ key: String, in body: Substring) -> Substring? {
        var depth = 0
        var index = body.startIndex
        var wordStart = true
        while index < body.endIndex {
            let c = body[index]
            if depth == 0, wordStart, body[index...].hasPrefix(key) {
                let after = body[body.index(index, offsetBy: key.count)...].drop { $0 == " " }
                if after.first == "=" { return after.dropFirst().drop { $0 == " " || $0 == "\n" } }
            }
            switch c {
            case "(", "[", "{": depth += 1
            case ")", "]", "}": depth -= 1
            default: break
            }
            wordStart = !(c.isLetter || c.isNumber || c == "_")
            index = body.index(after: index)
        }
        return nil
    }
}
