import DinoTensor

// Dimension letters in this file: B batch, N tokens per image (1 + R + h * w), R registers,
// C channels, h x w the patch grid.

/// Where each kind of token sits in a sequence: `[CLS, R_0 ... R_{R-1}, P_0 ... P_{h*w-1}]`, the
/// patches row-major over the grid.
public struct TokenLayout: Sendable, Hashable {
    /// Images in the batch, `B`.
    public var batch: Int
    /// Register tokens per image, `R`.
    public var registers: Int
    /// Patch grid rows, `h`.
    public var gridHeight: Int
    /// Patch grid columns, `w`.
    public var gridWidth: Int

    /// A layout from its sizes.
    public init(batch: Int, registers: Int, gridHeight: Int, gridWidth: Int) {
        self.batch = batch
        self.registers = registers
        self.gridHeight = gridHeight
        self.gridWidth = gridWidth
    }

    /// Patch tokens per image, `h * w`.
    public var patches: Int { gridHeight * gridWidth }
    /// Tokens before the patches (CLS and registers), `1 + R`.
    public var prefix: Int { 1 + registers }
    /// Tokens per image, `N`.
    public var tokens: Int { prefix + patches }
}

/// One stage's tokens `[B, N, C]` with the views heads read, so that no caller slices CLS,
/// registers and patches by hand.
public struct TokenSequence: Sendable {
    /// All tokens, `[B, N, C]`.
    public let tokens: Tensor
    /// Where CLS, registers and patches sit.
    public let layout: TokenLayout

    /// Tokens `[B, N, C]` laid out as `layout` says.
    public init(tokens: Tensor, layout: TokenLayout) {
        precondition(tokens.rank == 3 && tokens.shape[0] == layout.batch && tokens.shape[1] == layout.tokens,
                     "tokens \(tokens.shape) do not follow \(layout)")
        self.tokens = tokens
        self.layout = layout
    }

    /// Channels per token, `C`.
    public var channels: Int { tokens.shape[2] }

    /// The CLS token of each image, `[B, C]`.
    public var classToken: Tensor {
        let rows = tokenRows(0, count: 1)
        return Tensor(shape: [layout.batch, channels], scalars: rows.scalars)
    }

    /// The register tokens, `[B, R, C]` (`R` may be 0).
    public var registerTokens: Tensor { tokenRows(1, count: layout.registers) }

    /// The patch tokens, `[B, h * w, C]`, row-major over the grid.
    public var patchTokens: Tensor { tokenRows(layout.prefix, count: layout.patches) }

    /// The patch tokens as channel-first maps, `[B, C, h, w]` (registers stripped).
    public var patchMap: Tensor {
        let (b, n, c, patches, prefix) = (layout.batch, layout.tokens, channels, layout.patches, layout.prefix)
        var out = [Float](repeating: 0, count: b * c * patches)
        tokens.scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<b {
                    let from = (i * n + prefix) * c
                    let to = i * c * patches
                    for t in 0..<patches {
                        for j in 0..<c { dst[to + j * patches + t] = src[from + t * c + j] }
                    }
                }
            }
        }
        return Tensor(shape: [b, c, layout.gridHeight, layout.gridWidth], scalars: out)
    }

    /// Tokens `start..<start + count` of every image, `[B, count, C]`.
    public func tokenRows(_ start: Int, count: Int) -> Tensor {
        precondition(start >= 0 && count >= 0 && start + count <= layout.tokens, "tokens \(start)..<\(start + count) outside 0..<\(layout.tokens)")
        let (b, n, c) = (layout.batch, layout.tokens, channels)
        var out = [Float](repeating: 0, count: b * count * c)
        tokens.scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<b {
                    let from = (i * n + start) * c
                    for j in 0..<(count * c) { dst[i * count * c + j] = src[from + j] }
                }
            }
        }
        return Tensor(shape: [b, count, c], scalars: out)
    }
}

/// One block's query, key and value projections, each `[B, N, C]` with the heads side by side
/// (head `k` in channels `k * D ..< (k + 1) * D`).
public struct AttentionProjections: Sendable {
    /// `[B, N, 3C]`: query, key, value column blocks, as the fused projection writes them.
    let fused: Tensor
    /// Where CLS, registers and patches sit.
    public let layout: TokenLayout

    init(fused: Tensor, layout: TokenLayout) {
        self.fused = fused
        self.layout = layout
    }

    /// Queries.
    public var query: TokenSequence { part(0) }
    /// Keys.
    public var key: TokenSequence { part(1) }
    /// Values.
    public var value: TokenSequence { part(2) }

    private func part(_ index: Int) -> TokenSequence {
        let rows = fused.shape[0] * fused.shape[1]
        let c = fused.shape[2] / 3
        var out = [Float](repeating: 0, count: rows * c)
        fused.scalars.withUnsafeBufferPointer { src in
            for row in 0..<rows {
                for j in 0..<c { out[row * c + j] = src[row * 3 * c + index * c + j] }
            }
        }
        return TokenSequence(tokens: Tensor(shape: [fused.shape[0], fused.shape[1], c], scalars: out), layout: layout)
    }
}

/// What one backbone pass kept, exactly as its `FeatureRequest` asked: stage tokens before or
/// after the final LayerNorm, attention probabilities, query / key / value projections, logits.
/// Heads read this value; none reaches into the model.
public struct BackboneFeatures: Sendable {
    /// What the pass was asked to keep.
    public let request: FeatureRequest
    /// Where CLS, registers and patches sit in every token sequence.
    public let layout: TokenLayout
    /// Pixels per patch side, `p`.
    public let patchSize: Int
    /// Size of the pixels the caller handed to the pass, `(H, W)`. When the pass padded them to
    /// multiples of `p`, the input is larger (`padding`); maps at the image size use this one.
    public let imageSize: (height: Int, width: Int)
    /// Zero padding the pass added around the caller's pixels, in pixels.
    public let padding: (top: Int, left: Int)
    /// Per image, where its content lies in the caller's pixels (the whole image unless the
    /// caller says otherwise, e.g. for preprocessing that padded).
    public let contentRects: [PixelRect]
    let stagesBeforeNorm: [Int: Tensor]
    let stagesAfterNorm: [Int: Tensor]
    let attentionsByBlock: [Int: Tensor]
    let projectionsByBlock: [Int: Tensor]
    /// Classification logits `[B, labels]` when requested and the checkpoint has a classifier.
    public let logits: Tensor?

    init(request: FeatureRequest, layout: TokenLayout, patchSize: Int, imageSize: (height: Int, width: Int),
         padding: (top: Int, left: Int), contentRects: [PixelRect], stagesBeforeNorm: [Int: Tensor],
         stagesAfterNorm: [Int: Tensor], attentionsByBlock: [Int: Tensor], projectionsByBlock: [Int: Tensor], logits: Tensor?) {
        self.request = request
        self.layout = layout
        self.patchSize = patchSize
        self.imageSize = imageSize
        self.padding = padding
        self.contentRects = contentRects
        self.stagesBeforeNorm = stagesBeforeNorm
        self.stagesAfterNorm = stagesAfterNorm
        self.attentionsByBlock = attentionsByBlock
        self.projectionsByBlock = projectionsByBlock
        self.logits = logits
    }

    /// Size of the pixels the backbone saw, `(h * p, w * p)`.
    public var inputSize: (height: Int, width: Int) { (layout.gridHeight * patchSize, layout.gridWidth * patchSize) }

    /// Per image, where its content lies in the pixels the backbone saw.
    public var contentRectsInInput: [PixelRect] {
        contentRects.map { PixelRect(x: $0.x + padding.left, y: $0.y + padding.top, width: $0.width, height: $0.height) }
    }

    /// Stage `k`'s tokens (0 the embedding output, `k` block `k - 1`'s output), after the final
    /// LayerNorm when `normalized`.
    public func stage(_ k: Int, normalized: Bool = false) throws(DinoModelError) -> TokenSequence {
        guard let tokens = normalized ? stagesAfterNorm[k] : stagesBeforeNorm[k] else {
            throw .notRequested(what: "stage \(k) \(normalized ? "after" : "before") the final norm")
        }
        return TokenSequence(tokens: tokens, layout: layout)
    }

    /// Block `i`'s (0-based) output tokens, after the final LayerNorm when `normalized`.
    public func block(_ i: Int, normalized: Bool) throws(DinoModelError) -> TokenSequence {
        try stage(i + 1, normalized: normalized)
    }

    /// Block `i`'s (0-based) attention probabilities, `[B, H, N, N]`.
    public func attention(block i: Int) throws(DinoModelError) -> Tensor {
        guard let map = attentionsByBlock[i] else { throw .notRequested(what: "the attention probabilities of block \(i)") }
        return map
    }

    /// Block `i`'s (0-based) query, key and value projections.
    public func projections(block i: Int) throws(DinoModelError) -> AttentionProjections {
        guard let fused = projectionsByBlock[i] else { throw .notRequested(what: "the query/key/value projections of block \(i)") }
        return AttentionProjections(fused: fused, layout: layout)
    }
}
