/// A depth dataset's evaluation protocol: the range its heads were trained and are evaluated on,
/// the crop of its ground truth, and the integer units per metre of its 16-bit PNG maps.
// ref: dinov2's released depth configs (min_depth / max_depth) and the Monocular Depth
// Estimation Toolbox datasets (nyu.py: Eigen crop, depth_scale 1000; kitti.py: Garg crop, 256).
public struct DepthEvaluationPreset: Sendable, Equatable {
    /// The dataset's short name (`nyu`, `kitti`), as in the released heads' file names.
    public var name: String
    /// Smallest valid depth in metres.
    public var minDepth: Double
    /// Largest valid depth in metres.
    public var maxDepth: Double
    /// The crop of the valid-pixel mask.
    public var crop: EvaluationCrop
    /// Integer units per metre in the dataset's 16-bit PNG maps.
    public var depthScale: Float

    /// NYU Depth v2: 0.001-10 m, Eigen crop, millimetres.
    public static let nyu = DepthEvaluationPreset(name: "nyu", minDepth: 0.001, maxDepth: 10, crop: .nyuEigen, depthScale: 1000)
    /// KITTI: 0.001-80 m, Garg crop, 1/256 m.
    public static let kitti = DepthEvaluationPreset(name: "kitti", minDepth: 0.001, maxDepth: 80, crop: .garg, depthScale: 256)
    /// Every preset, in name order.
    public static let all = [kitti, nyu]

    /// The preset called `name`, or nil.
    public static func named(_ name: String) -> DepthEvaluationPreset? { all.first { $0.name == name } }

    /// The evaluation settings of this protocol, predictions aligned by `alignment`.
    public func evaluation(alignment: DepthAlignment = .none) -> DepthEvaluation {
        DepthEvaluation(minDepth: minDepth, maxDepth: maxDepth, crop: crop, alignment: alignment)
    }
}
