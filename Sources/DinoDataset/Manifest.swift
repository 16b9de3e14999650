import DinoTensor
import Foundation

/// One feature matrix every output holds: `name` `[K, width]`.
public struct FeatureColumn: Sendable, Equatable {
    /// Tensor name in the outputs (`cls_token`, `patch_mean`, `stage_mean.stage9`).
    public var name: String
    /// Features per key.
    public var width: Int

    /// A column named `name` of `width` features.
    public init(name: String, width: Int) {
        self.name = name
        self.width = width
    }
}

/// What makes two shards' features comparable: every shard of a run must have the same.
public struct ExtractionSettings: Sendable, Equatable {
    /// The `--model` argument (folder, checkpoint or hub id).
    public var model: String
    /// `model_type` of the checkpoint.
    public var modelType: String
    /// Hidden size `C`.
    public var hiddenSize: Int
    /// Patch size in pixels.
    public var patchSize: Int
    /// Register tokens.
    public var registers: Int
    /// The preprocessing, as one line.
    public var preprocessing: String
    /// The feature matrices of every output, in order.
    public var features: [FeatureColumn]

    /// Settings from their parts.
    public init(model: String, modelType: String, hiddenSize: Int, patchSize: Int, registers: Int, preprocessing: String,
                features: [FeatureColumn]) {
        self.model = model
        self.modelType = modelType
        self.hiddenSize = hiddenSize
        self.patchSize = patchSize
        self.registers = registers
        self.preprocessing = preprocessing
        self.features = features
    }

    /// Field names and values in a fixed order, for comparisons that name the difference.
    var fields: [(name: String, value: String)] {
        [("model", model), ("model_type", modelType), ("hidden_size", "\(hiddenSize)"), ("patch_size", "\(patchSize)"),
         ("registers", "\(registers)"), ("preprocessing", preprocessing),
         ("features", features.map { "\($0.name)[\($0.width)]" }.joined(separator: ","))]
    }

    /// The first field that differs from `other`: its name, `other`'s value and this value.
    func difference(from other: ExtractionSettings) -> (field: String, expected: String, actual: String)? {
        for (mine, theirs) in zip(fields, other.fields) where mine.value != theirs.value {
            return (mine.name, theirs.value, mine.value)
        }
        return nil
    }

    var json: JSONValue {
        .object([
            ("model", .string(model)), ("model_type", .string(modelType)), ("hidden_size", .int(hiddenSize)),
            ("patch_size", .int(patchSize)), ("registers", .int(registers)), ("preprocessing", .string(preprocessing)),
            ("features", .array(features.map { .object([("name", .string($0.name)), ("width", .int($0.width))]) })),
        ])
    }

    init(_ fields: JSONFields) throws(DatasetError) {
        var columns: [FeatureColumn] = []
        for item in try fields.objects("features") {
            columns.append(FeatureColumn(name: try item.string("name"), width: try item.int("width")))
        }
        self.init(model: try fields.string("model"), modelType: try fields.string("model_type"), hiddenSize: try fields.int("hidden_size"),
                  patchSize: try fields.int("patch_size"), registers: try fields.int("registers"),
                  preprocessing: try fields.string("preprocessing"), features: columns)
    }
}

/// A key that has no features, and why.
public struct KeyFailure: Sendable, Equatable {
    /// The sample key.
    public var key: String
    /// The error.
    public var reason: String

    /// A failure of `key`.
    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }
}

/// A finished unit: its output file and what it holds.
public struct UnitRecord: Sendable, Equatable {
    /// The unit's number in the dataset.
    public var index: Int
    /// The unit's name (tar path or file range).
    public var source: String
    /// Output file name, in the manifest's folder.
    public var output: String
    /// Keys with features (rows of every matrix).
    public var rows: Int
    /// Keys the unit's input had (`rows` plus the failures).
    public var expected: Int
    /// Keys that failed to decode or prepare.
    public var failures: [KeyFailure]
    /// Size of the output file.
    public var bytes: Int
    /// SHA-256 of the output file (lowercase hex).
    public var sha256: String
    /// Wall-clock seconds the unit took.
    public var seconds: Double

    /// A record from its parts.
    public init(index: Int, source: String, output: String, rows: Int, expected: Int, failures: [KeyFailure], bytes: Int,
                sha256: String, seconds: Double) {
        self.index = index
        self.source = source
        self.output = output
        self.rows = rows
        self.expected = expected
        self.failures = failures
        self.bytes = bytes
        self.sha256 = sha256
        self.seconds = seconds
    }

    var json: JSONValue {
        .object([
            ("index", .int(index)), ("source", .string(source)), ("output", .string(output)), ("rows", .int(rows)),
            ("expected", .int(expected)),
            ("failures", .array(failures.map { .object([("key", .string($0.key)), ("reason", .string($0.reason))]) })),
            ("bytes", .int(bytes)), ("sha256", .string(sha256)), ("seconds", .double(seconds)),
        ])
    }

    init(_ fields: JSONFields) throws(DatasetError) {
        var failures: [KeyFailure] = []
        for item in try fields.objects("failures") { failures.append(KeyFailure(key: try item.string("key"), reason: try item.string("reason"))) }
        self.init(index: try fields.int("index"), source: try fields.string("source"), output: try fields.string("output"),
                  rows: try fields.int("rows"), expected: try fields.int("expected"), failures: failures,
                  bytes: try fields.int("bytes"), sha256: try fields.string("sha256"), seconds: try fields.double("seconds"))
    }
}

extension UnitRecord {
    /// The output file in the folder of the manifest at `manifest`; an `output` that is absolute
    /// or leaves that folder (a tampered manifest) is refused.
    func outputURL(manifest: URL) throws(DatasetError) -> URL {
        do {
            return try InputFile.confined(output, in: manifest.deletingLastPathComponent(), source: manifest.path)
        } catch {
            throw .invalidManifest(path: manifest.path, reason: "unit \(index): output \(error.detail)")
        }
    }
}

/// A unit that could not be read (a corrupt or truncated tar); it is retried on `--resume`.
public struct UnitFailure: Sendable, Equatable {
    /// The unit's number.
    public var index: Int
    /// The unit's name.
    public var source: String
    /// The error.
    public var reason: String

    var json: JSONValue { .object([("index", .int(index)), ("source", .string(source)), ("reason", .string(reason))]) }

    init(index: Int, source: String, reason: String) {
        self.index = index
        self.source = source
        self.reason = reason
    }

    init(_ fields: JSONFields) throws(DatasetError) {
        self.init(index: try fields.int("index"), source: try fields.string("source"), reason: try fields.string("reason"))
    }
}

/// One invocation of a shard: where, when, how fast.
public struct RunRecord: Sendable, Equatable {
    /// Host name of the machine.
    public var host: String
    /// Start time, ISO 8601.
    public var started: String
    /// Wall-clock seconds from the first image to the end.
    public var seconds: Double
    /// Images run through the model in this invocation.
    public var images: Int
    /// `images / seconds`.
    public var imagesPerSecond: Double
    /// Images per forward pass.
    public var batchSize: Int
    /// Compute threads.
    public var threads: Int
    /// Decode threads (0: decoding in line with inference).
    public var decodeThreads: Int
    /// The signal that stopped the run early, if any.
    public var interruptedBy: Int?

    /// A record from its parts.
    public init(host: String, started: String, seconds: Double, images: Int, imagesPerSecond: Double, batchSize: Int, threads: Int,
                decodeThreads: Int, interruptedBy: Int?) {
        self.host = host
        self.started = started
        self.seconds = seconds
        self.images = images
        self.imagesPerSecond = imagesPerSecond
        self.batchSize = batchSize
        self.threads = threads
        self.decodeThreads = decodeThreads
        self.interruptedBy = interruptedBy
    }

    var json: JSONValue {
        .object([
            ("host", .string(host)), ("started", .string(started)), ("seconds", .double(seconds)), ("images", .int(images)),
            ("images_per_second", .double(imagesPerSecond)), ("batch_size", .int(batchSize)), ("threads", .int(threads)),
            ("decode_threads", .int(decodeThreads)), ("interrupted_by", interruptedBy.map { .int($0) } ?? .null),
        ])
    }

    init(_ fields: JSONFields) throws(DatasetError) {
        self.init(host: try fields.string("host"), started: try fields.string("started"), seconds: try fields.double("seconds"),
                  images: try fields.int("images"), imagesPerSecond: try fields.double("images_per_second"),
                  batchSize: try fields.int("batch_size"), threads: try fields.int("threads"),
                  decodeThreads: try fields.int("decode_threads"), interruptedBy: try fields.optionalInt("interrupted_by"))
    }
}

/// The record one shard keeps of its work in its output folder, rewritten atomically after
/// every unit: which units it owns, which are finished (with their output files), which failed,
/// and its runs. The keys themselves are in the outputs (`keys` metadata), which the recorded
/// sizes and SHA-256 sums pin.
public struct ShardManifest: Sendable, Equatable {
    /// The `format` field of this version.
    public static let format = "dino-extract-manifest/1"
    /// The version of this tool, recorded in manifests and outputs.
    public static let toolVersion = "dino-extract 1.0"

    /// The shard.
    public var shard: ShardSpec
    /// The settings every shard of the run shares.
    public var settings: ExtractionSettings
    /// Units in the whole dataset.
    public var unitCount: Int
    /// Files per file unit.
    public var chunkSize: Int
    /// `DatasetPlan.fingerprint` of the input.
    public var inputFingerprint: String
    /// The units this shard owns.
    public var assigned: [Int]
    /// Finished units, in unit order.
    public var units: [UnitRecord]
    /// Units that could not be read in the latest run.
    public var failedUnits: [UnitFailure]
    /// Every invocation, oldest first.
    public var runs: [RunRecord]

    /// A manifest with nothing finished yet.
    public init(shard: ShardSpec, settings: ExtractionSettings, plan: DatasetPlan) {
        self.shard = shard
        self.settings = settings
        unitCount = plan.units.count
        chunkSize = plan.chunkSize
        inputFingerprint = plan.fingerprint
        assigned = plan.units(of: shard).map(\.index)
        units = []
        failedUnits = []
        runs = []
    }

    /// Whether every assigned unit is finished.
    public var isComplete: Bool { Set(units.map(\.index)) == Set(assigned) }

    /// The manifest's file name for `shard`: `manifest-IIIII-of-NNNNN.json`.
    public static func fileName(for shard: ShardSpec) -> String {
        String(format: "manifest-%05d-of-%05d.json", shard.index, shard.count)
    }

    /// The manifest as JSON text.
    public var serialized: String {
        JSONValue.object([
            ("format", .string(Self.format)), ("tool", .string(Self.toolVersion)),
            ("shard", .object([("index", .int(shard.index)), ("count", .int(shard.count))])),
            ("settings", settings.json),
            ("inputs", .object([("units", .int(unitCount)), ("chunk_size", .int(chunkSize)), ("fingerprint", .string(inputFingerprint))])),
            ("assigned", .array(assigned.map { .int($0) })),
            ("complete", .bool(isComplete)),
            ("units", .array(units.map(\.json))),
            ("failed_units", .array(failedUnits.map(\.json))),
            ("runs", .array(runs.map(\.json))),
        ]).serialized + "\n"
    }

    /// Writes the manifest to `url` atomically.
    public func write(to url: URL) throws(DatasetError) {
        do {
            try AtomicFile.write(to: url) { try $0.write(contentsOf: Data(serialized.utf8)) }
        } catch {
            throw .writeFailed(path: url.path, reason: "\(error)")
        }
    }

    /// Reads the manifest at `url`.
    public init(url: URL) throws(DatasetError) {
        let data: Data
        do { data = try InputFile.contents(of: url) } catch { throw .cannotRead(path: url.path, reason: error.detail) }
        try self.init(data: data, path: url.path)
    }

    /// Parses a manifest's bytes; `path` names it in errors.
    public init(data: Data, path: String) throws(DatasetError) {
        let value: JSONValue
        do { value = try JSONValue.parse(data) } catch { throw .invalidManifest(path: path, reason: "\(error)") }
        let root = JSONFields(value: value, path: path, context: "")
        let format = try root.string("format")
        guard format == Self.format else {
            throw .invalidManifest(path: path, reason: "format is '\(format)', this tool reads '\(Self.format)'")
        }
        let shardFields = try root.object("shard")
        do {
            shard = try ShardSpec(index: try shardFields.int("index"), count: try shardFields.int("count"))
        } catch {
            throw .invalidManifest(path: path, reason: "shard: \(error)")
        }
        settings = try ExtractionSettings(try root.object("settings"))
        let inputs = try root.object("inputs")
        unitCount = try inputs.int("units")
        chunkSize = try inputs.int("chunk_size")
        inputFingerprint = try inputs.string("fingerprint")
        assigned = try root.array("assigned").enumerated().map { (i, item) throws(DatasetError) -> Int in
            guard let number = item.intValue else { throw .invalidManifest(path: path, reason: "assigned[\(i)] is not an integer") }
            return number
        }
        units = []
        for item in try root.objects("units") { units.append(try UnitRecord(item)) }
        failedUnits = []
        for item in try root.objects("failed_units") { failedUnits.append(try UnitFailure(item)) }
        runs = []
        for item in try root.objects("runs") { runs.append(try RunRecord(item)) }
    }
}

/// Typed access to the members of a JSON object, with errors naming the manifest and field.
struct JSONFields {
    let value: JSONValue
    let path: String
    /// Where `value` sits in the document (`settings.features[0].`), for messages.
    let context: String

    private func member(_ key: String) throws(DatasetError) -> JSONValue {
        guard let found = value[key] else { throw .invalidManifest(path: path, reason: "missing field \(context)\(key)") }
        return found
    }

    private func wrong(_ key: String, _ kind: String) -> DatasetError {
        .invalidManifest(path: path, reason: "field \(context)\(key) is not \(kind)")
    }

    func string(_ key: String) throws(DatasetError) -> String {
        guard let text = try member(key).stringValue else { throw wrong(key, "a string") }
        return text
    }

    func int(_ key: String) throws(DatasetError) -> Int {
        guard let number = try member(key).intValue else { throw wrong(key, "an integer") }
        return number
    }

    func optionalInt(_ key: String) throws(DatasetError) -> Int? {
        let found = try member(key)
        if found == .null { return nil }
        guard let number = found.intValue else { throw wrong(key, "an integer or null") }
        return number
    }

    func double(_ key: String) throws(DatasetError) -> Double {
        guard let number = try member(key).doubleValue else { throw wrong(key, "a number") }
        return number
    }

    func array(_ key: String) throws(DatasetError) -> [JSONValue] {
        guard let items = try member(key).arrayValue else { throw wrong(key, "an array") }
        return items
    }

    func object(_ key: String) throws(DatasetError) -> JSONFields {
        let found = try member(key)
        guard found.objectValue != nil else { throw wrong(key, "an object") }
        return JSONFields(value: found, path: path, context: context + key + ".")
    }

    func objects(_ key: String) throws(DatasetError) -> [JSONFields] {
        try array(key).enumerated().map { (i, item) throws(DatasetError) -> JSONFields in
            guard item.objectValue != nil else { throw wrong("\(key)[\(i)]", "an object") }
            return JSONFields(value: item, path: path, context: "\(context)\(key)[\(i)].")
        }
    }
}

extension JSONValue {
    static func int(_ value: Int) -> JSONValue { .number(String(value)) }
    static func double(_ value: Double) -> JSONValue { .number(value.isFinite ? String(format: "%.6g", value) : "0") }
}
