import DinoLayers
import DinoModel
import DinoTensor

// Dimension letters: B batch, C backbone width, L layers read, h x w the patch grid,
// K depth bins, H' x W' = 4h x 4w the head's output.

/// dinov2's linear depth head (`BNHead` with `classify=True`, the `lin1` / `lin4` evaluation):
/// a 1x1 convolution from the patch maps and CLS tokens of `L` blocks to `K` depth bins, a
/// normalised distribution over the bins, and its expectation over the bin centres.
///
/// Per block the patch map `[B, C, h, w]` is concatenated with its CLS token broadcast over the
/// grid (`2C` channels), upsampled x4 (bilinear, `align_corners=False`), the blocks are
/// concatenated (`2CL` channels), then `p = relu(logits) + 0.1` normalised over the bins, and
/// `depth = sum_k p_k * linspace(min_depth, max_depth, K)_k`.
// ref: dinov2/hub/depth/decode_heads.py BNHead._forward_feature / _transform_inputs ("resize_concat",
// upsample=4) and DepthBaseDecodeHead.depth_pred (bins_strategy "UD", norm_strategy "linear").
public struct LinearDepthHead: Sendable {
    /// Backbone width `C`.
    public let embedDim: Int
    /// Blocks read, `L` (1 for `lin1`, 4 for `lin4`).
    public let layerCount: Int
    /// Bin centres `linspace(min_depth, max_depth, K)`.
    public let bins: [Float]
    /// `decode_head.conv_depth`: `[K, 2CL, 1, 1]`.
    let classifier: Conv2d

    /// The upsampling factor from the patch grid to the head's output.
    public static let upsample = 4
    /// The additive floor of the bin weights (`eps` of the "linear" normalisation).
    static let binFloor: Float = 0.1

    /// Reads `decode_head.conv_depth.{weight,bias}` for a backbone of width `embedDim`.
    init(weights: inout HeadWeights<DepthError>, embedDim: Int, minDepth: Float, maxDepth: Float) throws(DepthError) {
        guard let shape = weights.shape("conv_depth.weight"), shape.count == 4 else {
            throw .missingTensor(key: weights.prefix + "conv_depth.weight", file: weights.file)
        }
        let inChannels = shape[1]
        guard inChannels % (2 * embedDim) == 0, inChannels > 0 else {
            throw .incompatibleBackbone(
                file: weights.file,
                reason: "conv_depth reads \(inChannels) channels, not a multiple of 2 x \(embedDim) (patch map + CLS token of a backbone of width \(embedDim))")
        }
        classifier = try weights.conv("conv_depth", in: inChannels, out: nil, kernel: 1, bias: true)
        self.embedDim = embedDim
        layerCount = inChannels / (2 * embedDim)
        let k = classifier.outChannels
        // ref: torch.linspace computes start + i * step for the first half and end - (K-1-i) * step
        // for the second, in float32.
        let step = (maxDepth - minDepth) / Float(max(k - 1, 1))
        bins = (0..<k).map { i in i < k / 2 ? minDepth + step * Float(i) : maxDepth - step * Float(k - 1 - i) }
    }

    /// Depth `[B, 1, 4h, 4w]`, before the clamp, from the layers of `intermediateLayers(...,
    /// reshape: true, returnClassToken: true, norm: false)`.
    public func callAsFunction(_ layers: [IntermediateLayer]) throws(DepthError) -> Tensor {
        guard layers.count == layerCount, let first = layers.first else {
            throw .invalidInput(reason: "the linear head reads \(layerCount) blocks, got \(layers.count)")
        }
        let (b, c, h, w) = (first.featureMap.shape[0], embedDim, first.featureMap.shape[2], first.featureMap.shape[3])
        var parts: [Tensor] = []
        for layer in layers {
            guard layer.featureMap.shape == [b, c, h, w], let cls = layer.classToken, cls.shape == [b, c] else {
                throw .invalidInput(reason: "block \(layer.block): expected a [\(b), \(c), \(h), \(w)] map with its CLS token, got \(layer.featureMap.shape)")
            }
            var broadcast = [Float](repeating: 0, count: b * c * h * w)
            for i in 0..<b {
                for j in 0..<c {
                    let value = cls.scalars[i * c + j]
                    let base = (i * c + j) * h * w
                    for p in 0..<(h * w) { broadcast[base + p] = value }
                }
            }
            parts += [layer.featureMap, Tensor(shape: [b, c, h, w], scalars: broadcast)]
        }
        // The 1x1 convolution and the bilinear upsampling are both linear, per pixel and per
        // channel respectively (and the upsampling weights sum to 1, so the bias passes through):
        // they commute. Classifying on the patch grid first and upsampling the K logits is the
        // same map, 16 times cheaper than classifying 2CL upsampled channels.
        let logits = try apply(classifier, concatenateChannels(parts))
        let upsampled = resizeBilinear(logits, height: Self.upsample * h, width: Self.upsample * w, alignCorners: false)
        return expectation(upsampled)
    }

    /// `[B, K, H', W']` logits -> `[B, 1, H', W']` expected depth.
    func expectation(_ logits: Tensor) -> Tensor {
        let (b, k, plane) = (logits.shape[0], logits.shape[1], logits.shape[2] * logits.shape[3])
        var depth = [Float](repeating: 0, count: b * plane)
        logits.scalars.withUnsafeBufferPointer { x in
            for i in 0..<b {
                var total = [Float](repeating: 0, count: plane)
                var weighted = [Float](repeating: 0, count: plane)
                for bin in 0..<k {
                    let base = (i * k + bin) * plane
                    let centre = bins[bin]
                    for p in 0..<plane {
                        let weight = max(x[base + p], 0) + Self.binFloor
                        total[p] += weight
                        weighted[p] += weight * centre
                    }
                }
                for p in 0..<plane { depth[i * plane + p] = weighted[p] / total[p] }
            }
        }
        return Tensor(shape: [b, 1, logits.shape[2], logits.shape[3]], scalars: depth)
    }
}
