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

/// A linear head on a frozen backbone: pixels in, per-pixel class logits and label maps out.
///
/// As a `PixelMapHead` it reads the chosen blocks after the final LayerNorm from a shared pass
/// and predicts logits at the size of the pixels handed to the pass.
public struct Segmenter: PixelMapHead {
    /// The backbone the head reads.
    public let model: VisionTransformer
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
        self.model = model
        self.head = head
        self.blocks = blocks
    }

    /// The patch size `p`.
    public var patchSize: Int { model.configuration.patchSize }

    /// The chosen blocks after the final LayerNorm.
    ///
    /// ref: dinov2 `get_intermediate_layers(n, reshape=True, norm=True)` (what the dinov2
    /// segmentation notebook hands the head).
    public var featureRequest: FeatureRequest { .blocks(blocks, normalized: true) }

    /// The head input of a pass: the chosen blocks' normalised patch maps `[B, D, h, w]`,
    /// concatenated to `[B, C, h, w]`.
    public func headInput(_ features: BackboneFeatures) throws(SegmentationError) -> Tensor {
        do {
            return try head.concatenate(try blocks.map { (block: Int) throws(DinoModelError) in try features.block(block, normalized: true).patchMap })
        } catch let error as SegmentationError {
            throw error
        } catch let error as DinoModelError {
            throw .model(error)
        } catch {
            throw .sizeMismatch(what: "head input", expected: "the chosen blocks' maps", actual: "\(error)")
        }
    }

    /// The head input for pixels `[B, 3, H, W]` whose sides are multiples of `p`.
    public func headInput(_ pixels: Tensor) throws(SegmentationError) -> Tensor {
        try headInput(try pass(pixels, padding: .none))
    }

    /// Logits `[B, K, H, W]` at `features.imageSize`: the head's logits on the patch grid,
    /// bilinearly resized (so a grid padded by the pass is stretched over the unpadded image).
    ///
    /// ref: mmseg `EncoderDecoder.encode_decode`, which resizes the head's output to the input size.
    public func predict(_ features: BackboneFeatures) throws -> Tensor {
        try logits(features)
    }

    /// `predict(_:)` with its error type.
    public func logits(_ features: BackboneFeatures) throws(SegmentationError) -> Tensor {
        let grid = try head.classify(try headInput(features))
        return resizeBilinear(grid, height: features.imageSize.height, width: features.imageSize.width, alignCorners: false)
    }

    /// Logits `[B, K, H, W]` for pixels `[B, 3, H, W]` of any size, in one pass: sides that are
    /// not multiples of `p` are zero-padded around the centre.
    ///
    /// ref: the dinov2 segmentation notebook's `CenterPadding` pre-hook on the backbone.
    public func logits(_ pixels: Tensor) throws(SegmentationError) -> Tensor {
        try logits(try pass(pixels, padding: .centre))
    }

    /// Logits `[B, K, H, W]` from overlapping windows, each run as `logits(_:)` does and the
    /// overlaps averaged.
    public func slidingLogits(_ pixels: Tensor, window: SlidingWindow) throws(SegmentationError) -> Tensor {
        guard pixels.rank == 4 else { throw .sizeMismatch(what: "pixels", expected: "[B, 3, H, W]", actual: "\(pixels.shape)") }
        do {
            return try HeadRunner(model: model, padding: .centre)
                .averaged(pixels, head: self, windows: window.windows(height: pixels.shape[2], width: pixels.shape[3]))
        } catch let error as SegmentationError {
            throw error
        } catch let error as DinoModelError {
            throw .model(error)
        } catch {
            throw .invalidSetting(name: "sliding window", reason: "\(error)")
        }
    }

    private func pass(_ pixels: Tensor, padding: InputPadding) throws(SegmentationError) -> BackboneFeatures {
        guard pixels.rank == 4, pixels.shape[1] == 3, pixels.shape[2] > 0, pixels.shape[3] > 0 else {
            throw .sizeMismatch(what: "pixels", expected: "[B, 3, H, W]", actual: "\(pixels.shape)")
        }
        do {
            return try model.features(pixels, request: featureRequest, padding: padding)
        } catch {
            throw .model(error)
        }
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
            try Self.checkWhole(image)
            if let g = groups.firstIndex(where: { images[$0[0]].contentRect == image.contentRect && images[$0[0]].pixels.shape == image.pixels.shape }) {
                groups[g].append(i)
            } else {
                groups.append([i])
            }
        }
        for group in groups {
            let rect = images[group[0]].contentRect
            let content = Tensor.stack(group.map { images[$0].pixels.reshaped([1] + images[$0].pixels.shape).cropped(to: rect)[0] })
            let logits = try logits(content, mode: mode)
            for (j, i) in group.enumerated() {
                let size = images[i].originalSize
                out[i] = LabelMap.argmax(logits[j], height: size.height, width: size.width)
            }
        }
        return out.compactMap { $0 }
    }

    /// Label maps of prepared images from a shared pass over their stacked pixels (one that kept
    /// `featureRequest`): the same maps as `segment(_:mode:)`, without a pass of its own when the
    /// pass saw what that would run on (whole-image mode, each image's content centre-padded to
    /// the grid by its preset or not padded at all); otherwise it runs its own passes.
    public func segment(_ features: BackboneFeatures, images: [PreparedImage], mode: InferenceMode = .whole) throws(SegmentationError) -> [LabelMap] {
        let p = patchSize
        func sharesPass(_ image: PreparedImage) -> Bool {
            let (c, width, height) = (image.contentRect, image.width, image.height)
            return width == (c.width + p - 1) / p * p && height == (c.height + p - 1) / p * p
                && c.x == (width - c.width) / 2 && c.y == (height - c.height) / 2
        }
        guard mode == .whole, features.padding == (0, 0), features.layout.batch == images.count,
              images.allSatisfy({ $0.height == features.imageSize.height && $0.width == features.imageSize.width && sharesPass($0) })
        else {
            return try segment(images, mode: mode)
        }
        for image in images { try Self.checkWhole(image) }
        let grid = try head.classify(try headInput(features))  // [B, K, h, w]
        return images.enumerated().map { i, image in
            let content = image.contentRect
            let logits = resizeBilinear(Tensor.stack([grid[i]]), height: content.height, width: content.width, alignCorners: false)
            return LabelMap.argmax(logits[0], height: image.originalSize.height, width: image.originalSize.width)
        }
    }

    /// Segmentation labels every pixel of the original image: a preset that crops cannot be used.
    private static func checkWhole(_ image: PreparedImage) throws(SegmentationError) {
        let source = image.sourceRect
        guard source.x == 0, source.y == 0, source.width == image.originalSize.width, source.height == image.originalSize.height else {
            throw .invalidSetting(name: "preprocessing", reason: "segmentation needs the whole image; the classification preset crops it")
        }
    }
}
