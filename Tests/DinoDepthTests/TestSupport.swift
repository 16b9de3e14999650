import DinoTensor
import Foundation
import Testing

/// Files written by `Scripts/make_depth_fixtures.py`.
enum Fixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repository = folder.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func url(_ path: String) -> URL { folder.appendingPathComponent(path) }

    static func file(_ path: String) throws -> SafetensorsFile { try SafetensorsFile(url: url(path)) }

    /// The reference tensor `name` of `heads.safetensors` or `depth_anything.safetensors`.
    static func reference(_ name: String, in path: String = "heads.safetensors") throws -> Tensor {
        try file(path).tensor(name)
    }
}

/// Compares `actual` with the reference `expected`: `max|diff| <= tolerance * max(1, max|ref|)`.
/// On failure it reports the worst index, the difference there and the first values of both;
/// it always prints the figures, which the parity notes quote.
func expectClose(_ actual: Tensor, _ expected: Tensor, _ label: String, tolerance: Float = 1e-4,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.shape == expected.shape, "\(label): shape \(actual.shape), expected \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return }
    var worst: Float = 0
    var worstIndex = 0
    for i in actual.scalars.indices {
        let d = abs(actual.scalars[i] - expected.scalars[i])
        if !(d <= worst) { worst = d; worstIndex = i }
    }
    let scale = max(1, expected.maxAbs)
    print(String(format: "parity %@: max|diff| %.3g (max|ref| %.3g, relative %.3g)", label, Double(worst), Double(expected.maxAbs), Double(worst / scale)))
    #expect(worst <= tolerance * scale, """
        \(label): max|diff| \(worst) at flat index \(worstIndex) (actual \(actual.scalars[worstIndex]), expected \(expected.scalars[worstIndex])), \
        tolerance \(tolerance * scale); first actual \(Array(actual.scalars.prefix(4))), expected \(Array(expected.scalars.prefix(4)))
        """, sourceLocation: sourceLocation)
}
