import DinoImage
import DinoModel
import Foundation

/// Preprocessing presets as the short text stored in head files (`resize:448`,
/// `resize-pad:512`, `pad`, `size:518x518`), so that inference prepares images the way the
/// head was trained.
public enum InputPolicy {
    /// The text of a dense preset; nil for presets a segmentation head cannot use.
    public static func text(_ preset: Preprocessing) -> String? {
        switch preset {
        case .resize(let side): return "resize:\(side)"
        case .resizeAndPad(let side): return "resize-pad:\(side)"
        case .pad: return "pad"
        case .padBottomRight: return "pad-bottom-right"
        case .size(let h, let w): return "size:\(h)x\(w)"
        case .classification, .dinov3: return nil
        }
    }

    /// The preset a text names.
    public static func preset(_ text: String) throws(SegmentationError) -> Preprocessing {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        func number(_ s: String) -> Int? { Int(s).flatMap { $0 > 0 ? $0 : nil } }
        switch (parts.first ?? "", parts.count) {
        case ("pad", 1): return .pad
        case ("pad-bottom-right", 1): return .padBottomRight
        case ("resize", 2): if let side = number(parts[1]) { return .resize(shortSide: side) }
        case ("resize-pad", 2): if let side = number(parts[1]) { return .resizeAndPad(shortSide: side) }
        case ("size", 2):
            let dims = parts[1].split(separator: "x").compactMap { number(String($0)) }
            if dims.count == 2 { return .size(height: dims[0], width: dims[1]) }
        default: break
        }
        throw .invalidSetting(name: "input policy '\(text)'",
                              reason: "expected resize:N, resize-pad:N, pad, pad-bottom-right or size:HxW")
    }
}

extension SegmentationHead {
    /// How images are prepared for the head: as it was trained (its input policy), else the
    /// short side resized to 448.
    public func defaultPreprocessing() throws(SegmentationError) -> Preprocessing {
        try configuration.inputPolicy.map { (text: String) throws(SegmentationError) in try InputPolicy.preset(text) } ?? .resize(shortSide: 448)
    }
}

extension LayerSelection {
    /// `last:N` or `blocks:i,j,...` (0-based), the form stored in head files.
    public var text: String {
        switch self {
        case .last(let n): return "last:\(n)"
        case .blocks(let list): return "blocks:" + list.map(String.init).joined(separator: ",")
        }
    }

    /// Parses `last:N`, `blocks:i,j,...`, or the dinov2 head names `linear` (the last block)
    /// and `ms` (the last four).
    public init(text: String) throws(SegmentationError) {
        let bad = SegmentationError.invalidSetting(name: "layers '\(text)'", reason: "expected linear, ms, last:N or blocks:i,j,...")
        switch text {
        case "linear": self = .last(1); return
        case "ms": self = .last(4); return
        default: break
        }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw bad }
        if parts[0] == "last", let n = Int(parts[1]), n >= 1 {
            self = .last(n)
        } else if parts[0] == "blocks" {
            let items = parts[1].split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !items.isEmpty, items.allSatisfy({ ($0 ?? -1) >= 0 }) else { throw bad }
            self = .blocks(items.compactMap { $0 })
        } else {
            throw bad
        }
    }

    /// The 0-based block indices for a backbone of `depth` blocks, in block order; at least one.
    public func blocks(depth: Int) throws(SegmentationError) -> [Int] {
        if case .blocks(let list) = self, list.isEmpty {
            throw .invalidSetting(name: "layers \(text)", reason: "blocks must be distinct and at least one")
        }
        do {
            return try resolvedBlocks(depth: depth)
        } catch {
            guard case .invalidStageSelection(let reason) = error else { throw .model(error) }
            throw .incompatibleBackbone(head: "layers \(text)", reason: "\(reason); the backbone has \(depth) blocks")
        }
    }
}
