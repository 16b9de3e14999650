import DinoLayers
import DinoModel
import DinoTensor

// Dimension letters: B batch, C backbone width, F the head's width (`channels`, 256 in the
// released heads), h x w the patch grid, N = h * w patches.

/// dinov2's DPT depth head (`DPTHead` with `readout_type="project"`): four blocks reassembled
/// into a feature pyramid, fused from the coarsest up, and a small convolutional output head.
///
/// - Reassemble block i: readout projection `GELU(Linear(2C -> C)([token, CLS]))` per patch,
///   1x1 convolution to `C_i` (`post_process_channels`, `[C/8, C/4, C/2, C]`), then x4
///   (transposed conv k4 s4), x2 (transposed conv k2 s2), x1, x0.5 (conv k3 s2 p1).
/// - A 3x3 convolution (no bias) brings each to `F` channels.
/// - Fusion blocks from the coarsest map: residual units, bilinear x2 (`align_corners=True`),
///   1x1 projection; then a 3x3 convolution + ReLU.
/// - Output head: 3x3 conv `F -> F/2`, bilinear x2 (`align_corners=True`), 3x3 conv `F/2 -> 32`,
///   ReLU, 1x1 conv `32 -> 1`; depth = `relu(x) + min_depth`.
// ref: dinov2/hub/depth/decode_heads.py DPTHead.forward, ReassembleBlocks, FeatureFusionBlock,
// PreActResidualConvUnit, HeadDepth, DepthBaseDecodeHead.depth_pred (classify=False).
public struct DPTDepthHead: Sendable {
    struct Reassemble: Sendable {
        /// `readout_projects.i.0`: `[C, 2C]`.
        let readout: Dense
        /// `projects.i.conv`: `[C_i, C, 1, 1]`.
        let projection: Conv2d
        let resampling: Resampling
    }

    /// Backbone width `C`.
    public let embedDim: Int
    /// Width of the fusion path, `F`.
    public let channels: Int
    /// Added to the ReLU of the output: the smallest depth the head predicts.
    public let minDepth: Float
    let reassemble: [Reassemble]
    let convs: [Conv2d]
    let fusion: [FusionBlock]
    let project: Conv2d
    let head: (Conv2d, Conv2d, Conv2d)

    /// Resolution factors of the four reassemble blocks.
    static let factors: [Double] = [4, 2, 1, 0.5]

    init(weights: inout HeadWeights<DepthError>, embedDim c: Int, minDepth: Float) throws(DepthError) {
        guard let projectShape = weights.shape("convs.0.conv.weight"), projectShape.count == 4 else {
            throw .missingTensor(key: weights.prefix + "convs.0.conv.weight", file: weights.file)
        }
        let f = projectShape[0]
        var reassemble: [Reassemble] = []
        var convs: [Conv2d] = []
        for (i, factor) in Self.factors.enumerated() {
            guard let shape = weights.shape("reassemble_blocks.projects.\(i).conv.weight"), shape.count == 4 else {
                throw .missingTensor(key: weights.prefix + "reassemble_blocks.projects.\(i).conv.weight", file: weights.file)
            }
            let ci = shape[0]
            if let readoutShape = weights.shape("reassemble_blocks.readout_projects.\(i).0.weight"), readoutShape != [c, 2 * c] {
                throw .incompatibleBackbone(file: weights.file, reason: "readout projection \(i) is \(readoutShape), a backbone of width \(c) needs [\(c), \(2 * c)]")
            }
            reassemble.append(Reassemble(
                readout: try weights.dense("reassemble_blocks.readout_projects.\(i).0", in: 2 * c, out: c),
                projection: try weights.conv("reassemble_blocks.projects.\(i).conv", in: c, out: ci, kernel: 1, bias: true),
                resampling: try Resampling.load(&weights, "reassemble_blocks.resize_layers.\(i)", channels: ci, factor: factor)))
            convs.append(try weights.conv("convs.\(i).conv", in: ci, out: f, kernel: 3, bias: false, padding: 1))
        }
        var fusion: [FusionBlock] = []
        for i in 0..<4 {
            fusion.append(try FusionBlock.load(
                &weights, "fusion_blocks.\(i)", channels: f, units: (i == 0 ? nil : "res_conv_unit1", "res_conv_unit2"),
                convNames: ("conv1.conv", "conv2.conv"), projectionName: "project.conv", residualBias: false))
        }
        project = try weights.conv("project.conv", in: f, out: f, kernel: 3, bias: true, padding: 1)
        head = (try weights.conv("conv_depth.head.0", in: f, out: f / 2, kernel: 3, bias: true, padding: 1),
                try weights.conv("conv_depth.head.2", in: f / 2, out: nil, kernel: 3, bias: true, padding: 1),
                try weights.conv("conv_depth.head.4", in: nil, out: 1, kernel: 1, bias: true))
        self.embedDim = c
        channels = f
        self.minDepth = minDepth
        self.reassemble = reassemble
        self.convs = convs
        self.fusion = fusion
    }

    /// Depth `[B, 1, H', W']` (about 16 x the patch grid), before the clamp, from the four layers
    /// of `intermediateLayers(..., reshape: true, returnClassToken: true, norm: false)`.
    public func callAsFunction(_ layers: [IntermediateLayer]) throws(DepthError) -> Tensor {
        guard layers.count == reassemble.count else {
            throw .invalidInput(reason: "the DPT head reads \(reassemble.count) blocks, got \(layers.count)")
        }
        var features: [Tensor] = []
        for (layer, stage) in zip(layers, reassemble) {
            let projected = try readout(layer, stage.readout)
            features.append(try apply(convs[features.count], try stage.resampling(try apply(stage.projection, projected))))
        }
        var x = try fusion[0](features[3], skip: nil)
        for i in 1..<4 {
            x = try fusion[i](x, skip: features[3 - i])
        }
        x = try apply(project, x).relu()
        x = try apply(head.0, x)
        x = resizeBilinear(x, height: 2 * x.shape[2], width: 2 * x.shape[3], alignCorners: true)
        x = try apply(head.2, try apply(head.1, x).relu())
        return Tensor(shape: x.shape, scalars: x.scalars.map { max($0, 0) + minDepth })
    }

    /// `GELU(Linear([token, CLS]))` for every patch: `[B, C, h, w]` and `[B, C]` -> `[B, C, h, w]`.
    private func readout(_ layer: IntermediateLayer, _ dense: Dense) throws(DepthError) -> Tensor {
        let map = layer.featureMap
        guard map.rank == 4, map.shape[1] == embedDim, let cls = layer.classToken, cls.shape == [map.shape[0], embedDim] else {
            throw .invalidInput(reason: "block \(layer.block): expected a [B, \(embedDim), h, w] map with its CLS token, got \(map.shape)")
        }
        let (b, c, h, w) = (map.shape[0], embedDim, map.shape[2], map.shape[3])
        let n = h * w
        // [B, C, N] -> [B, N, 2C] rows of (token, CLS)
        var rows = [Float](repeating: 0, count: b * n * 2 * c)
        for i in 0..<b {
            for t in 0..<n {
                let row = (i * n + t) * 2 * c
                for j in 0..<c {
                    rows[row + j] = map.scalars[(i * c + j) * n + t]
                    rows[row + c + j] = cls.scalars[i * c + j]
                }
            }
        }
        let projected: Tensor
        do {
            projected = try dense(Tensor(shape: [b, n, 2 * c], scalars: rows)).gelu()
        } catch {
            throw .layer(error)
        }
        // [B, N, C] -> [B, C, h, w]
        var out = [Float](repeating: 0, count: b * c * n)
        for i in 0..<b {
            for t in 0..<n {
                for j in 0..<c { out[(i * c + j) * n + t] = projected.scalars[(i * n + t) * c + j] }
            }
        }
        return Tensor(shape: [b, c, h, w], scalars: out)
    }
}
