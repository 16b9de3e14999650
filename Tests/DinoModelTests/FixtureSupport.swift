import DinoModel
import DinoTensor
import Foundation
import Testing

/// The reference fixtures written by `Scripts/make_fixtures.py`.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func folder(_ name: String) -> URL { root.appendingPathComponent(name) }

    /// `reference.json` of a case.
    static func metadata(_ name: String) throws -> JSONValue {
        try JSONValue.parse(Data(contentsOf: folder(name).appendingPathComponent("reference.json")))
    }

    /// All reference tensors of a case: its own `reference.safetensors` (and
    /// `attentions.safetensors`); copies in another naming or layout use their `source_case`'s
    /// outputs, and the reduced-precision copies take only the input from `input_from`.
    static func reference(_ name: String) throws -> [String: Tensor] {
        let meta = try metadata(name)
        var tensors: [String: Tensor] = [:]
        if let inputCase = meta["input_from"]?.stringValue {
            tensors["pixel_values"] = try reference(inputCase)["pixel_values"]
        } else if let source = meta["source_case"]?.stringValue {
            tensors = try reference(source)
        }
        for file in ["reference.safetensors", "attentions.safetensors"] {
            let url = folder(name).appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            let reader = try SafetensorsFile(url: url)
            for key in reader.tensorNames { tensors[key] = try reader.tensor(key) }
        }
        return tensors
    }
}

/// The worst disagreement between a result and its reference.
struct Comparison: CustomStringConvertible {
    var name: String
    var maxAbsDiff: Float
    var worstIndex: Int
    var referenceMaxAbs: Float
    var tolerance: Float
    var actualHead: [Float]
    var expectedHead: [Float]

    var passed: Bool { maxAbsDiff <= tolerance }
    /// The error relative to the tolerance's scale, `max|diff| / max(1, max|ref|)`.
    var scaledError: Float { maxAbsDiff / max(1, referenceMaxAbs) }

    var description: String {
        "\(name): max|diff| \(maxAbsDiff) at flat index \(worstIndex) (tolerance \(tolerance), max|ref| \(referenceMaxAbs)); "
            + "actual starts \(actualHead), expected \(expectedHead)"
    }
}

/// Compares with the project tolerance `max|diff| <= 1e-4 * max(1, max|ref|)` and records a
/// test issue with the worst index and the first values when it is exceeded.
@discardableResult
func expectClose(_ actual: Tensor, _ expected: Tensor, _ name: String, relative: Float = 1e-4,
                 sourceLocation: SourceLocation = #_sourceLocation) -> Comparison {
    guard actual.shape == expected.shape else {
        Issue.record("\(name): shape \(actual.shape), expected \(expected.shape)", sourceLocation: sourceLocation)
        return Comparison(name: name, maxAbsDiff: .infinity, worstIndex: -1, referenceMaxAbs: expected.maxAbs,
                          tolerance: 0, actualHead: [], expectedHead: [])
    }
    var worst: Float = 0
    var worstIndex = 0
    for i in 0..<actual.count {
        let diff = abs(actual.scalars[i] - expected.scalars[i])
        if !(diff <= worst) {  // also catches NaN
            worst = diff.isNaN ? .infinity : diff
            worstIndex = i
        }
    }
    let referenceMax = expected.maxAbs
    let comparison = Comparison(
        name: name, maxAbsDiff: worst, worstIndex: worstIndex, referenceMaxAbs: referenceMax,
        tolerance: relative * max(1, referenceMax),
        actualHead: Array(actual.scalars.prefix(4)), expectedHead: Array(expected.scalars.prefix(4)))
    if !comparison.passed {
        Issue.record("\(comparison)", sourceLocation: sourceLocation)
    }
    return comparison
}
