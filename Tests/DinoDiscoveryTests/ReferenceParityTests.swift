import DinoDiscovery
import DinoImage
import DinoModel
import DinoTensor
import Foundation
import Testing

@Suite("LOST and TokenCut against the numpy reference")
struct ReferenceParityTests {
    @Test("seeds, boxes and masks equal the reference on every stored feature set")
    func storedFeatures() throws {
        let cases = try Fixtures.cases()
        #expect(cases.count >= 19, "fixture cases: \(cases.count)")
        for reference in cases {
            let object = try reference.discoveryMethod().discover(reference.features)
            reference.expectMatches(object, reference.name)
            // LOST's score is a ratio of integers; TokenCut's comes from a float32 eigenvalue.
            let tolerance = reference.method == "lost" ? 1e-6 : 1e-4
            #expect(abs(Double(object.score) - reference.score) <= tolerance,
                    "\(reference.name): score \(object.score), reference \(reference.score)")
        }
    }

    @Test("Swift's last-block features equal HF's within 1e-4, and give the reference's objects")
    func backboneFeatures() throws {
        #expect(try checkBackboneFeatures(try Fixtures.cases()) >= 18)
    }

    /// Runs each photo case's backbone in Swift, compares its last-block features with the stored
    /// reference features (within 1e-4 x max(1, max |ref|)) and the method on them with the
    /// reference's result; returns the number of cases checked.
    func checkBackboneFeatures(_ cases: [ReferenceCase]) throws -> Int {
        var models: [String: VisionTransformer] = [:]
        var computed: [String: PatchFeatures] = [:]
        var checked = 0
        for reference in cases {
            guard let checkpoint = reference.checkpoint, let image = reference.image else { continue }
            let kind = try #require(FeatureKind(rawValue: reference.kind))
            let key = "\(checkpoint) \(image) \(kind)"
            if computed[key] == nil {
                let model = try models[checkpoint] ?? VisionTransformer(directory: Fixtures.model(checkpoint))
                models[checkpoint] = model
                let photo = try ImageIO.read(Fixtures.repository.appendingPathComponent(image))
                let prepared = try Preprocessing.padBottomRight.prepare(photo, patchSize: model.configuration.patchSize)
                let features = try #require(try LastBlockFeatures(model: model, kind: kind)([prepared]).first)
                let expected = reference.features
                #expect(features.rows == expected.rows && features.columns == expected.columns && features.channels == expected.channels)
                #expect(features.imageWidth == expected.imageWidth && features.imageHeight == expected.imageHeight)
                let maxReference = expected.values.reduce(0) { max($0, abs($1)) }
                var worst: Float = 0
                var worstIndex = 0
                for (i, (a, b)) in zip(features.values, expected.values).enumerated() where !(abs(a - b) <= worst) {
                    worst = abs(a - b).isNaN ? .infinity : abs(a - b)
                    worstIndex = i
                }
                print("parity \(key): max |features - reference| = \(worst) (max |ref| \(maxReference))")
                #expect(worst <= 1e-4 * max(1, maxReference),
                        "\(key): max |diff| \(worst) at patch \(worstIndex / expected.channels), channel \(worstIndex % expected.channels) (max |ref| \(maxReference))")
                computed[key] = features
            }
            let features = try #require(computed[key])
            reference.expectMatches(try reference.discoveryMethod().discover(features), "\(reference.name) on Swift features")
            checked += 1
        }
        return checked
    }

    @Test("equal degrees resolve to the lowest patch index, also at the k boundary")
    func ties() throws {
        let reference = try #require(try Fixtures.cases().first { $0.name == "ties@lost" })
        let info = try #require(try Fixtures.json("reference.json")["cases"]?.arrayValue?.first { $0["name"]?.stringValue == "ties@lost" }?["ties"])
        let tiedValues = info["tied_lowest"]?.arrayValue?.compactMap(\.intValue)
        let tied = try #require(tiedValues)
        let object = try LOST(potentialCount: 6)(reference.features)
        #expect(object.seed == reference.features.position(tied[0]), "the lowest index of \(tied)")
        reference.expectMatches(object, "ties")
        let otherValues = info["reversed_tie_break_box"]?.arrayValue?.compactMap(\.intValue)
        let other = try #require(otherValues)
        #expect(object.box.coordinates != other, "the fixture distinguishes the tie-breaking rules")
    }
}

/// LOST on a DINOv3 backbone (`Scripts/make_dinov3_head_fixtures.py`: HF `DINOv3ViTModel`, 4
/// blocks, patch 16, 4 registers) against the same numpy reference. The keys are the last block's
/// keys as its attention uses them, i.e. after the RoPE rotation of the patch tokens (HF
/// `DINOv3ViTAttention`: `k_proj`, then `apply_rotary_pos_emb`); LOST reads the keys its last
/// block's attention uses (a hook on `qkv`, nothing in between for DINO / DINOv2), and the library's
/// `AttentionProjections` are taken after the rotation.
@Suite("LOST on DINOv3 keys against the numpy reference")
struct DINOv3ReferenceParityTests {
    static func cases() throws -> [ReferenceCase] {
        try Fixtures.cases(reference: "dinov3_reference.json", features: "dinov3_features.safetensors")
    }

    @Test("seeds, boxes and masks equal the reference on the stored DINOv3 keys")
    func storedFeatures() throws {
        let cases = try Self.cases()
        #expect(cases.count >= 3, "DINOv3 fixture cases: \(cases.count)")
        for reference in cases {
            #expect(reference.method == "lost" && reference.kind == "k" && reference.features.patchSize == 16)
            let object = try reference.discoveryMethod().discover(reference.features)
            reference.expectMatches(object, reference.name)
            #expect(abs(Double(object.score) - reference.score) <= 1e-6, "\(reference.name): score \(object.score), reference \(reference.score)")
        }
    }

    @Test("Swift's rotated last-block keys equal HF's within 1e-4, and give the reference's seed and box")
    func backboneFeatures() throws {
        let cases = try Self.cases()
        #expect(try ReferenceParityTests().checkBackboneFeatures(cases) == cases.count && cases.count >= 3)
    }
}
