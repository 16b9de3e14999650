import DinoDiscovery
import DinoTensor
import Foundation
import Testing

/// The fixtures written by `Scripts/make_discovery_fixtures.py`.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repository = root.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let models = repository.appendingPathComponent("Tests/DinoModelTests/Fixtures")

    /// The backbone folder of a case's `checkpoint`: a folder of `models`, or a path from the
    /// repository's root (the DINOv3 cases: `Tests/DinoSegmentationTests/Fixtures/dinov3_model`).
    static func model(_ checkpoint: String) -> URL {
        checkpoint.contains("/") ? repository.appendingPathComponent(checkpoint) : models.appendingPathComponent(checkpoint)
    }

    static func json(_ path: String) throws -> JSONValue {
        try JSONValue.parse(Data(contentsOf: root.appendingPathComponent(path)))
    }

    /// `reference.json`'s cases (or those of another reference file and its features, such as
    /// `dinov3_reference.json` and `dinov3_features.safetensors`).
    static func cases(reference: String = "reference.json", features featureFile: String = "features.safetensors") throws -> [ReferenceCase] {
        let document = try json(reference)
        let features = try SafetensorsFile(url: root.appendingPathComponent(featureFile))
        return try (document["cases"]?.arrayValue ?? []).map { try ReferenceCase($0, features: features) }
    }
}

/// One reference result: the features, the method's settings and what the reference found.
struct ReferenceCase: CustomStringConvertible {
    var name: String
    var method: String
    var params: JSONValue
    var checkpoint: String?
    var image: String?
    var kind: String
    var features: PatchFeatures
    var seed: PatchPosition
    var box: BoundingBox
    var score: Double
    var foreground: PatchMask
    var component: PatchMask
    var margins: String

    var description: String { name }

    init(_ json: JSONValue, features file: SafetensorsFile) throws {
        func field(_ key: String) throws -> JSONValue { try #require(json[key], "reference case lacks '\(key)'") }
        name = try #require(try field("name").stringValue)
        method = try #require(try field("method").stringValue)
        params = try field("params")
        checkpoint = json["checkpoint"]?.stringValue
        image = json["image"]?.stringValue
        kind = try #require(try field("kind").stringValue)
        let grid = try #require(try field("grid").arrayValue?.compactMap(\.intValue))
        let size = try #require(try field("image_size").arrayValue?.compactMap(\.intValue))
        let tensor = try file.tensor(try #require(try field("features").stringValue))
        features = try PatchFeatures(values: tensor.scalars, rows: grid[0], columns: grid[1], channels: tensor.shape[1],
                                     patchSize: try #require(try field("patch_size").intValue), imageWidth: size[0], imageHeight: size[1])
        let seedRC = try #require(try field("seed").arrayValue?.compactMap(\.intValue))
        seed = PatchPosition(row: seedRC[0], column: seedRC[1])
        let b = try #require(try field("box").arrayValue?.compactMap(\.intValue))
        box = BoundingBox(x0: b[0], y0: b[1], x1: b[2], y1: b[3])
        score = try #require(try field("score").doubleValue)
        func mask(_ key: String) throws -> PatchMask {
            let rows = try #require(try field(key).arrayValue?.compactMap(\.stringValue))
            return PatchMask(rows: grid[0], columns: grid[1], values: rows.joined().map { $0 == "1" })
        }
        foreground = try mask("foreground")
        component = try mask("component")
        margins = json["margins"]?.serialized ?? "{}"
    }

    /// The method with the case's settings.
    func discoveryMethod() throws -> DiscoveryMethod {
        switch method {
        case "lost":
            return .lost(LOST(potentialCount: try #require(params["k"]?.intValue),
                              gramBias: Float(try #require(params["bias"]?.doubleValue))))
        case "tokencut":
            return .tokenCut(TokenCut(threshold: Float(try #require(params["tau"]?.doubleValue)),
                                      nonEdgeWeight: Float(try #require(params["eps"]?.doubleValue))))
        default:
            throw FixtureError("unknown method \(method)")
        }
    }

    /// Records an issue for every way `object` differs from the reference, with the differing
    /// patches and the case's margins.
    func expectMatches(_ object: DiscoveredObject, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(object.seed == seed, "\(label): seed \(object.seed), reference \(seed); margins \(margins)", sourceLocation: sourceLocation)
        #expect(object.box == box, "\(label): box \(object.box), reference \(box); margins \(margins)", sourceLocation: sourceLocation)
        for (what, actual, expected) in [("foreground", object.foreground, foreground), ("component", object.component, component)] {
            let differing = (0..<expected.values.count).filter { actual.values[$0] != expected.values[$0] }
            #expect(differing.isEmpty, "\(label): \(what) differs at \(differing.count) patches, first \(differing.prefix(5).map { features.position($0) }); margins \(margins)",
                    sourceLocation: sourceLocation)
        }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
