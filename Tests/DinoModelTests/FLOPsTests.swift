import DinoModel
import Foundation
import Testing

/// `VisionTransformer.forwardFLOPs`, the count behind every GFLOP/s and share-of-peak figure,
/// against PyTorch's FLOP counter on the same configurations (`Scripts/count_flops.py`).
@Suite("FLOP count")
struct FLOPsTests {
    /// `Fixtures/flop_counts.json`.
    struct Counts: Decodable {
        struct Entry: Decodable {
            var fixture: String
            var batch: Int
            var height: Int
            var width: Int
            var total: Double
            var byOperator: [String: Double]

            enum CodingKeys: String, CodingKey {
                case fixture, batch, height, width, total
                case byOperator = "by_operator"
            }
        }

        var versions: [String: String]
        var counts: [Entry]
    }

    static let counts: [Counts.Entry] = {
        guard let data = try? Data(contentsOf: Fixtures.root.appendingPathComponent("flop_counts.json")),
              let counts = try? JSONDecoder().decode(Counts.self, from: data) else { return [] }
        return counts.counts
    }()

    @Test("every fixture configuration with a config is counted")
    func everyFixture() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Fixtures.root.path).filter {
            FileManager.default.fileExists(atPath: Fixtures.folder($0).appendingPathComponent("config.json").path)
        }
        #expect(!folders.isEmpty)
        #expect(Set(Self.counts.map(\.fixture)) == Set(folders))
    }

    // Both count the GEMMs only (matrix products, the patch embedding's convolution, attention's
    // q kᵀ and p v, 2 FLOPs per multiply-add, biases not counted) and leave out LayerNorm,
    // softmax, activations, residual additions and the position-embedding interpolation, so the
    // totals are compared exactly.
    @Test("the forward pass's FLOPs equal PyTorch's FlopCounterMode count", arguments: counts.map(\.fixture))
    func matchesPyTorch(_ fixture: String) throws {
        let entry = try #require(Self.counts.first { $0.fixture == fixture })
        let model = try VisionTransformer(directory: Fixtures.folder(fixture))
        let flops = model.forwardFLOPs(batch: entry.batch, height: entry.height, width: entry.width)
        #expect(flops == entry.total,
                "\(fixture) \(entry.batch)x\(entry.height)x\(entry.width): \(flops) against PyTorch's \(entry.total) (\(entry.byOperator))")
    }
}
