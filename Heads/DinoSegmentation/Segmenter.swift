import DinoImage
import DinoLayers
import DinoModel
import DinoTensor

// Dimension letters: B batch, D backbone hidden size, C head channels, K classes,
// H x W pixels (of an image or a window), h x w the patch grid, p the patch size.

/// Overlapping windows for images larger than what the head should see at once.
///
/// ref: mmseg `EncoderDecoder.slide_inference`: `ceil((H - crop) / stride) + 1` rows of
/// windows (at least one), the last row and column moved back to end flush with the image,
/// windows clipped to the image when it is smaller than the crop; each window's logits are
/// added in place and every pixel divided by the number of windows covering it.
public struct SlidingWindow: Sendable, Equatable {
    /// Window height in pixels.
    public var cropHeight: Int
    /// Window width in pixels.
    public var cropWidth: Int
    /// Vertical step between windows.
    public var strideHeight: Int
    /// Horizontal step between windows.
    public var strideWidth: Int

    /// Windows of `crop` pixels every `stride` pixels; the stride must not exceed the crop,
    /// or pixels between windows would get no logits.
    public init(crop: (height: Int, width: Int), stride: (height: Int, width: Int)) throws(SegmentationError) {
        guard crop.height > 0, crop.width > 0, stride.height > 0, stride.width > 0 else {
            throw .invalidSetting(name: "sliding window", reason: "crop \(crop.height)x\(crop.width) and stride \(stride.height)x\(stride.width) must be positive")
        }
        guard stride.height <= crop.height, stride.width <= crop.width else {
            throw .invalidSetting(name: "sliding window",
                                  reason: "stride \(stride.height)x\(stride.width) is larger than the crop \(crop.height)x\(crop.width): pixels between windows would get no prediction")
        }
        cropHeight = crop.height
        cropWidth = crop.width
        strideHeight = stride.height
        strideWidth = stride.width
    }

    /// The window rectangles for an image of `height x width`, row by row.
    public func windows(height: Int, width: Int) -> [PixelRect] {
        let rows = max(height - cropHeight + strideHeight - 1, 0) / strideHeight + 1
        let columns = max(width - cropWidth + strideWidth - 1, 0) / strideWidth + 1
        var out: [PixelRect] = []
        for r in 0..<rows {
            for c in 0..<columns {
                let y2 = min(r * strideHeight + cropHeight, height), x2 = min(c * strideWidth + cropWidth, width)
                let y1 = max(y2 - cropHeight, 0), x1 = max(x2 - cropWidth, 0)
                out.append(PixelRect(x: x1, y: y1, width: x2 - x1, height: y2 - y1))
            }
        }
        return out
    }
}

/// Whole-image or sliding-window inference.
public enum InferenceMode: Sendable, Equatable {
    /// The image in one pass.
    case whole
    /// Overlapping windows, averaged.
    case slide(SlidingWindow)
}

/// A frozen backbone with a linear head: pixels in, per-pixel class logits and label maps out.
public struct Segmenter: Sendable {
    /// The backbone (only `intermediateLayers` of its model is used).
    public let backbone: Backbone
    /// The head.
    public let head: SegmentationHead
    /// The 0-based blocks feeding the head, in block order.
    public let blocks: [Int]

    /// Pairs `head` with `model`, checking that the head's layers exist and its channel count is
    /// the hidden size times the number of layers.
    public init(model: VisionTransformer, head: SegmentationHead) throws(SegmentationError) {
        let config = model.configuration
        let blocks = try head.configuration.layers.blocks(depth: config.numHiddenLayers)
        guard head.channels == config.hiddenSize * blocks.count else {
            throw .incompatibleBackbone(
                head: "head (\(head.configuration.layers.text))",
                reason: "it takes \(head.channels) channels, the backbone gives \(blocks.count) x \(config.hiddenSize) = \(blocks.count * config.hiddenSize)")
        }
        do {
            backbone = try Backbone(model: model)
        } catch {
            throw .model(error)
        }
        self.head = head
        self.blocks = blocks
    }

    /// The patch size `p`.
    public var patchSize: Int { backbone.model.configuration.patchSize }

    /// The head input for pixels `[B, 3, H, W]` whose sides are multiples of `p`: the chosen
    /// blocks' outputs after the final LayerNorm, without CLS and registers, as `[B, D, h, w]`
    /// maps, concatenated to `[B, C, h, w]`.
    ///
    /// ref: dinov2 `get_intermediate_layers(n, reshape=True, norm=True)` (what the dinov2
    /// segmentation notebook hands the head).
    public func headInput(_ pixels: Tensor) throws(SegmentationError) -> Tensor {
        let layers: [IntermediateLayer]
        do {
            layers = try backbone.intermediateLayers(pixels, .blocks(blocks), reshape: true, returnClassToken: false, norm: true)
        } catch {
            throw .model(error)
        }
        return try head.concatenate(layers.map(\.featureMap))
    }

    /// Logits `[B, K, H, W]` for pixels `[B, 3, H, W]` of any size, in one pass.
    ///
    /// Sides that are not multiples of `p` are zero-padded (zero is the mean colour after
    /// normalisation) around the centre, `pad / 2` before; the logits of the padded grid are
    /// upsampled to `H x W`, so the grid is stretched over the unpadded image.
    ///
    /// ref: the dinov2 segmentation notebook's `CenterPadding` pre-hook on the backbone, and
    /// mmseg `EncoderDecoder.encode_decode`, which resizes the head's output to the input size.
    public func logits(_ pixels: Tensor) throws(SegmentationError) -> Tensor {
        guard pixels.rank == 4, pixels.shape[1] == 3, pixels.shape[2] > 0, pixels.shape[3] > 0 else {
            throw .sizeMismatch(what: "pixels", expected: "[B, 3, H, W]", actual: "\(pixels.shape)")
        }
        let (h, w) = (pixels.shape[2], pixels.shape[3])
        let p = patchSize
        let padH = (p - h % p) % p, padW = (p - w % p) % p
        let input = padH == 0 && padW == 0 ? pixels : TensorRegion.padded(pixels, top: padH / 2, bottom: padH - padH / 2, left: padW / 2, right: padW - padW / 2)
        let grid = try head.classify(try headInput(input))
        return resizeBilinear(grid, height: h, width: w, alignCorners: false)
    }

    /// Logits `[B, K, H, W]` from overlapping windows, each run as `logits(_:)` does and the
    /// overlaps averaged.
    public func slidingLogits(_ pixels: Tensor, window: SlidingWindow) throws(SegmentationError) -> Tensor {
        guard pixels.rank == 4 else { throw .sizeMismatch(what: "pixels", expected: "[B, 3, H, W]", actual: "\(pixels.shape)") }
        let (b, h, w, k) = (pixels.shape[0], pixels.shape[2], pixels.shape[3], head.numClasses)
        var sum = [Float](repeating: 0, count: b * k * h * w)
        var count = [Float](repeating: 0, count: h * w)
        for rect in window.windows(height: h, width: w) {
            let part = try logits(TensorRegion.cropped(pixels, rect))
            TensorRegion.add(part, into: &sum, height: h, width: w, at: rect)
            for y in rect.y..<(rect.y + rect.height) {
                for x in rect.x..<(rect.x + rect.width) { count[y * w + x] += 1 }
            }
        }
        let plane = h * w
        for plane0 in 0..<(b * k) {
            for j in 0..<plane { sum[plane0 * plane + j] /= count[j] }
        }
        return Tensor(shape: [b, k, h, w], scalars: sum)
    }

    /// Logits `[B, K, H, W]` in the chosen mode.
    public func logits(_ pixels: Tensor, mode: InferenceMode) throws(SegmentationError) -> Tensor {
        switch mode {
        case .whole: return try logits(pixels)
        case .slide(let window): return try slidingLogits(pixels, window: window)
        }
    }

    /// The label map of a prepared image at its original size.
    ///
    /// The model sees the image content of the prepared pixels (padding of the preset cut away,
    /// then padded around the centre as `logits(_:)` does); the logits are bilinearly resized
    /// to the original size and each pixel takes its highest-scoring class.
    ///
    /// ref: mmseg `EncoderDecoder.inference` with `rescale=True` (logits resized to `ori_shape`,
    /// then `argmax`).
    public func segment(_ prepared: PreparedImage, mode: InferenceMode = .whole) throws(SegmentationError) -> LabelMap {
        try segment([prepared], mode: mode)[0]
    }

    /// Label maps of prepared images; images whose content has one size and place run as one
    /// batch.
    public func segment(_ images: [PreparedImage], mode: InferenceMode = .whole) throws(SegmentationError) -> [LabelMap] {
        var out = [LabelMap?](repeating: nil, count: images.count)
        var groups: [[Int]] = []
        for (i, image) in images.enumerated() {
            let source = image.sourceRect
            guard source.x == 0, source.y == 0, source.width == image.originalSize.width, source.height == image.originalSize.height else {
                throw .invalidSetting(name: "preprocessing", reason: "segmentation needs the whole image; the classification preset crops it")
            }
            if let g = groups.firstIndex(where: { images[$0[0]].contentRect == image.contentRect && images[$0[0]].pixels.shape == image.pixels.shape }) {
                groups[g].append(i)
            } else {
                groups.append([i])
            }
        }
        for group in groups {
            let rect = images[group[0]].contentRect
            let content = Tensor.stack(group.map { TensorRegion.cropped(images[$0].pixels.reshaped([1] + images[$0].pixels.shape), rect)[0] })
            let logits = try logits(content, mode: mode)
            for (j, i) in group.enumerated() {
                let size = images[i].originalSize
                out[i] = LabelMap.argmax(logits[j], height: size.height, width: size.width)
            }
        }
        return out.compactMap { $0 }
    }
}

/// Crops, pads and pastes of `[B, C, H, W]` tensors.
enum TensorRegion {
    /// The `rect` region of every plane: `[B, C, rect.height, rect.width]`.
    static func cropped(_ x: Tensor, _ rect: PixelRect) -> Tensor {
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        precondition(rect.x >= 0 && rect.y >= 0 && rect.x + rect.width <= w && rect.y + rect.height <= h, "crop outside the tensor")
        if rect.x == 0, rect.y == 0, rect.width == w, rect.height == h { return x }
        var out = [Float](repeating: 0, count: planes * rect.height * rect.width)
        for p in 0..<planes {
            for y in 0..<rect.height {
                let src = (p * h + rect.y + y) * w + rect.x
                let dst = (p * rect.height + y) * rect.width
                out.replaceSubrange(dst..<(dst + rect.width), with: x.scalars[src..<(src + rect.width)])
            }
        }
        return Tensor(shape: [x.shape[0], x.shape[1], rect.height, rect.width], scalars: out)
    }

    /// Zero padding around every plane.
    static func padded(_ x: Tensor, top: Int, bottom: Int, left: Int, right: Int) -> Tensor {
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let (ph, pw) = (h + top + bottom, w + left + right)
        var out = [Float](repeating: 0, count: planes * ph * pw)
        for p in 0..<planes {
            for y in 0..<h {
                let src = (p * h + y) * w, dst = (p * ph + y + top) * pw + left
                out.replaceSubrange(dst..<(dst + w), with: x.scalars[src..<(src + w)])
            }
        }
        return Tensor(shape: [x.shape[0], x.shape[1], ph, pw], scalars: out)
    }

    /// Adds `part` `[B, K, rect.height, rect.width]` into `sum` `[B, K, height, width]` at `rect`.
    static func add(_ part: Tensor, into sum: inout [Float], height: Int, width: Int, at rect: PixelRect) {
        let planes = part.shape[0] * part.shape[1]
        for p in 0..<planes {
            for y in 0..<rect.height {
                let src = (p * rect.height + y) * rect.width
                let dst = (p * height + rect.y + y) * width + rect.x
                for x in 0..<rect.width { sum[dst + x] += part.scalars[src + x] }
            }
        }
    }
}
