import DinoTensor

// Dimension letters in this file: B batch, N tokens per image, C hidden size, H x W pixels,
// p the patch size.

/// How a pass treats pixels whose sides are not multiples of the patch size.
public enum InputPadding: Sendable, Equatable {
    /// Such pixels are an error, as in HF transformers.
    case none
    /// Zeros around the centre, `pad / 2` before and the rest after (zero is the mean colour after
    /// normalisation).
    ///
    /// ref: dinov2 `CenterPadding`, the pre-hook the released segmentation and depth heads run
    /// the backbone with.
    case centre
}

extension VisionTransformer {
    /// One backbone pass over normalised pixels `[B, channels, H, W]` that keeps what `request`
    /// asks for and nothing else.
    ///
    /// - Parameter contentRects: per image, where its content lies in `pixels` (preprocessing that
    ///   padded says so here); nil is the whole image.
    /// - Parameter maskedPatches: HF's `bool_masked_pos`, `[B, h * w]` over the (padded) patch
    ///   grid: a non-zero entry replaces that patch's embedding with the mask token.
    public func features(_ pixels: Tensor, request: FeatureRequest, padding: InputPadding = .none,
                         contentRects: [PixelRect]? = nil, maskedPatches: Tensor? = nil) throws(DinoModelError) -> BackboneFeatures {
        guard pixels.rank == 4, pixels.shape[2] > 0, pixels.shape[3] > 0 else {
            throw .invalidInput(reason: "pixels must be [B, \(configuration.numChannels), H, W], got shape \(pixels.shape)")
        }
        let (b, h, w) = (pixels.shape[0], pixels.shape[2], pixels.shape[3])
        let whole = PixelRect(x: 0, y: 0, width: w, height: h)
        let rects = contentRects ?? Array(repeating: whole, count: b)
        guard rects.count == b else { throw .invalidInput(reason: "\(rects.count) content rectangles for a batch of \(b)") }
        for rect in rects where rect.width < 1 || rect.height < 1 || rect.x < 0 || rect.y < 0 || rect.x + rect.width > w || rect.y + rect.height > h {
            throw .invalidInput(reason: "content rectangle \(rect) is not inside the \(h)x\(w) image")
        }
        let p = configuration.patchSize
        var input = pixels
        var offset = (top: 0, left: 0)
        if padding == .centre {
            let (padH, padW) = ((p - h % p) % p, (p - w % p) % p)
            offset = (padH / 2, padW / 2)
            input = pixels.padded(top: padH / 2, bottom: padH - padH / 2, left: padW / 2, right: padW - padW / 2)
        }
        let encoded = try encode(input, request: request, maskedPatches: maskedPatches)
        let layers = configuration.numHiddenLayers
        var normalized: [Int: Tensor] = [:]
        for stage in request.normalizedStages {
            if let tokens = encoded.stages[stage] { normalized[stage] = finalNorm(tokens) }
        }
        var logits: Tensor?
        if request.logits, let classifier = weights.classifier, let last = encoded.stages[layers] {
            logits = classify(normalized[layers] ?? finalNorm(last), classifier: classifier)
        }
        return BackboneFeatures(
            request: request, layout: encoded.layout, patchSize: p, imageSize: (h, w), padding: offset, contentRects: rects,
            stagesBeforeNorm: encoded.stages.filter { request.stages.contains($0.key) }, stagesAfterNorm: normalized,
            attentionsByBlock: encoded.attentions, projectionsByBlock: encoded.projections, logits: logits)
    }
}
