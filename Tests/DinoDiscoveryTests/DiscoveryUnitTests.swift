import DinoDiscovery
import DinoImage
import DinoModel
import DinoTensor
import Foundation
import Testing

/// Features `[h * w, C]` with `object` patches set to `inside` and the others to `outside`.
func blockFeatures(rows: Int, columns: Int, object: Set<Int>, inside: [Float], outside: [Float],
                   imageWidth: Int? = nil, imageHeight: Int? = nil) throws -> PatchFeatures {
    let values = (0..<(rows * columns)).flatMap { object.contains($0) ? inside : outside }
    return try PatchFeatures(values: values, rows: rows, columns: columns, channels: inside.count, patchSize: 14,
                             imageWidth: imageWidth ?? columns * 14, imageHeight: imageHeight ?? rows * 14)
}

@Suite("discovery methods: edge cases and contracts")
struct DiscoveryUnitTests {
    @Test("a small anti-correlated block is found by both methods, its box clipped to the unpadded image")
    func block() throws {
        // 5 x 6 grid; the object is the 2 x 2 block at rows 3-4, columns 4-5 (the bottom-right corner).
        let object: Set<Int> = [22, 23, 28, 29]
        let features = try blockFeatures(rows: 5, columns: 6, object: object, inside: [-1, 2, 0], outside: [1, 0, 0.5],
                                         imageWidth: 80, imageHeight: 65)
        for method in [DiscoveryMethod.lost(LOST()), .tokenCut(TokenCut())] {
            let found = try method.discover(features)
            #expect(found.component.values == (0..<30).map { object.contains($0) }, "\(method.summary)")
            #expect(found.box == BoundingBox(x0: 56, y0: 42, x1: 80, y1: 65), "\(method.summary): clipped to 80 x 65")
            #expect(object.contains(found.seed.row * 6 + found.seed.column))
            #expect(found.score > 0 && found.score <= 1)
        }
        // LOST: the object's patches correlate positively with 3 others, the background with 25.
        #expect(try LOST()(features).score == 1 - 3 / 29)
        #expect(try LOST()(features).seed == PatchPosition(row: 3, column: 4), "the lowest index of the tied block")
    }

    @Test("degree ties everywhere: the seed is patch 0")
    func allTied() throws {
        let features = try blockFeatures(rows: 3, columns: 4, object: [], inside: [1, 1], outside: [1, 1])
        let found = try LOST(potentialCount: 3)(features)
        #expect(found.seed == PatchPosition(row: 0, column: 0))
        #expect(found.box == BoundingBox(x0: 0, y0: 0, x1: 56, y1: 42))
        #expect(found.score == 0)
    }

    @Test("a seed outside the mask, bad parameters and bad features throw")
    func errors() throws {
        let zero = try blockFeatures(rows: 2, columns: 2, object: [], inside: [0, 0], outside: [0, 0])
        #expect(throws: DiscoveryError.seedInBackground(row: 0, column: 0)) { try LOST()(zero) }
        let ones = try blockFeatures(rows: 2, columns: 2, object: [], inside: [1, 0], outside: [1, 0])
        #expect(throws: DiscoveryError.seedInBackground(row: 0, column: 0)) { try LOST(gramBias: -2)(ones) }
        #expect(throws: DiscoveryError.invalidParameter(name: "k (potential patches)", value: "0", expected: "at least 1")) {
            try LOST(potentialCount: 0)(ones)
        }
        #expect(throws: DiscoveryError.self) { try TokenCut(nonEdgeWeight: 0)(ones) }
        #expect(throws: DiscoveryError.self) { try TokenCut(threshold: .nan)(ones) }
        let single = try blockFeatures(rows: 1, columns: 1, object: [], inside: [1], outside: [1])
        #expect(throws: DiscoveryError.tooFewPatches(count: 1, needed: 2)) { try TokenCut()(single) }
        #expect(try LOST()(single).box == BoundingBox(x0: 0, y0: 0, x1: 14, y1: 14))

        #expect(throws: DiscoveryError.featureShape(expected: [4, 2], actual: [7])) {
            try PatchFeatures(values: [Float](repeating: 0, count: 7), rows: 2, columns: 2, channels: 2, patchSize: 14, imageWidth: 28, imageHeight: 28)
        }
        #expect(throws: DiscoveryError.nonFiniteFeature(patch: 1, channel: 1)) {
            try PatchFeatures(values: [0, 0, 0, .nan], rows: 1, columns: 2, channels: 2, patchSize: 14, imageWidth: 28, imageHeight: 14)
        }
        #expect(throws: DiscoveryError.self) {
            try PatchFeatures(values: [0, 0], rows: 1, columns: 2, channels: 1, patchSize: 14, imageWidth: 29, imageHeight: 14)
        }
    }

    @Test("components are 4-connected: diagonal neighbours are separate objects")
    func connectivity() {
        let mask = PatchMask(rows: 3, columns: 3, values: [true, false, true,
                                                           false, true, true,
                                                           true, false, false])
        #expect(mask.component(containing: PatchPosition(row: 0, column: 0)).count == 1)
        #expect(mask.component(containing: PatchPosition(row: 1, column: 1)).values == [false, false, true, false, true, true, false, false, false])
        #expect(mask.component(containing: PatchPosition(row: 0, column: 1)).count == 0)
    }

    @Test("boxes map back to the original image through resizing; unresized they are unchanged")
    func originalCoordinates() throws {
        let image = RGBImage(width: 100, height: 50, color: (10, 20, 30))
        let padded = try Preprocessing.padBottomRight.prepare(image, patchSize: 14)
        let box = BoundingBox(x0: 14, y0: 0, x1: 100, y1: 50)
        #expect(box.inOriginal(of: padded) == box)
        let resized = try Preprocessing.resize(shortSide: 28).prepare(image, patchSize: 14)  // 56 x 28
        #expect(BoundingBox(x0: 14, y0: 0, x1: 56, y1: 14).inOriginal(of: resized) == BoundingBox(x0: 25, y0: 0, x1: 100, y1: 25))
    }

    @Test("the model's last-block projections are read without a second pass; without them the reader explains")
    func lastBlock() throws {
        let model = try VisionTransformer(directory: Fixtures.models.appendingPathComponent("reg4_downsample"))
        let image = try Preprocessing.padBottomRight.prepare(RGBImage(width: 30, height: 20, color: (200, 100, 50)), patchSize: 14)
        let reader = LastBlockFeatures(model: model, kind: .values)
        #expect(reader.featureRequest.projectionBlocks == [1])
        let features = try #require(try reader([image, image]).last)
        #expect((features.rows, features.columns, features.channels) == (2, 3, 32))
        #expect((features.imageWidth, features.imageHeight) == (30, 20))
        let plain = try model.features(Tensor.stack([image.pixels]), request: .lastHiddenState(layers: 2))
        #expect(throws: DiscoveryError.missingProjections(block: 1, available: [])) { try reader.features(of: plain) }
        // The values are the last third of the channels of the kept projections.
        let pass = try model.features(Tensor.stack([image.pixels]), request: reader.featureRequest)
        let qkv = try pass.projections(block: 1).value.tokens  // [1, N, 32]
        let firstPatch = Array(qkv.scalars[(5 * 32)..<(6 * 32)])
        let single = try #require(try reader([image]).first)
        #expect(Array(single.values[0..<32]) == firstPatch, "same batch, same values")
    }

    @Test("the picture keeps the image size, tints the object and outlines box and seed")
    func picture() throws {
        let image = RGBImage(width: 80, height: 65, color: (0, 0, 0))
        let prepared = try Preprocessing.padBottomRight.prepare(image, patchSize: 14)
        let features = try blockFeatures(rows: 5, columns: 6, object: [22, 23, 28, 29], inside: [-1, 2, 0], outside: [1, 0, 0.5],
                                         imageWidth: 80, imageHeight: 65)
        let found = try LOST()(features)
        let picture = DiscoveryPicture.render(found, on: image, prepared: prepared, caption: "LOST")
        #expect((picture.width, picture.height) == (80, 65))
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(picture.pixels[((y * 80 + x) * 3)..<((y * 80 + x) * 3 + 3)]) }
        #expect(pixel(56, 64) == [DiscoveryPicture.boxColor.0, DiscoveryPicture.boxColor.1, DiscoveryPicture.boxColor.2])
        #expect(pixel(0, 0) == [0, 0, 0], "background untouched")
        #expect(pixel(70, 60)[0] > 0, "object tinted")
    }
}
