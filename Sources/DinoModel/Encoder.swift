import CDinoKernels
import DinoCompute
import DinoTensor

// Dimension letters in this file: B batch, N tokens per image (1 + R + h * w), R registers,
// C hidden size, H heads, D head dim, h x w the patch grid, p the patch size.

extension VisionTransformer {
    /// What the embedding and the blocks of one pass kept, before any final norm.
    struct Encoded {
        /// Where CLS, registers and patches sit.
        var layout: TokenLayout
        /// Kept stages (0 = embeddings, k = block k - 1's output), `[B, N, C]` each.
        var stages: [Int: Tensor]
        /// Attention probabilities of the kept blocks, `[B, H, N, N]`.
        var attentions: [Int: Tensor]
        /// Query/key/value projections of the kept blocks, `[B, N, 3C]`.
        var projections: [Int: Tensor]
    }

    /// Checks `pixels` and returns `(B, H, W)`.
    func checkInput(_ pixels: Tensor) throws(DinoModelError) -> (batch: Int, height: Int, width: Int) {
        guard pixels.rank == 4 else {
            throw .invalidInput(reason: "pixels must be [B, \(configuration.numChannels), H, W], got shape \(pixels.shape)")
        }
        let (b, channels, height, width) = (pixels.shape[0], pixels.shape[1], pixels.shape[2], pixels.shape[3])
        guard b >= 1 else { throw .invalidInput(reason: "batch is empty (shape \(pixels.shape))") }
        guard channels == configuration.numChannels else {
            throw .invalidInput(reason: "pixels have \(channels) channels, the model expects \(configuration.numChannels) (shape \(pixels.shape))")
        }
        let p = configuration.patchSize
        guard height >= p, width >= p, height % p == 0, width % p == 0 else {
            throw .inputSizeNotMultipleOfPatch(height: height, width: width, patchSize: p)
        }
        return (b, height, width)
    }

    /// Embeds `pixels` `[B, channels, H, W]` and runs the blocks up to the last one `request`
    /// needs, keeping the stages, attentions and projections it names (`stages` also takes the
    /// stages that `normalizedStages` needs, to be normalised by the caller).
    func encode(_ pixels: Tensor, request: FeatureRequest, maskedPatches: Tensor? = nil) throws(DinoModelError) -> Encoded {
        let (b, height, width) = try checkInput(pixels)
        let cfg = configuration
        try request.validate(layers: cfg.numHiddenLayers)
        let p = cfg.patchSize
        let layout = TokenLayout(batch: b, registers: cfg.numRegisterTokens, gridHeight: height / p, gridWidth: width / p)
        let (n, c, patches) = (layout.tokens, cfg.hiddenSize, layout.patches)
        let rows = b * n
        guard rows <= ComputeLimits.maxTokens else {
            throw .tooManyTokens(tokens: rows, limit: ComputeLimits.maxTokens, batch: b, height: height, width: width)
        }
        let threads = ComputeThreads.current
        var maskToken: [Float]?
        if let maskedPatches {
            guard maskedPatches.shape == [b, patches] else {
                throw .invalidInput(reason: "the patch mask must be [B, h * w] = [\(b), \(patches)] for this input, got \(maskedPatches.shape)")
            }
            guard let token = weights.maskToken else {
                throw .invalidInput(reason: "the checkpoint has no mask token, so patches cannot be masked")
            }
            maskToken = token
        }
        // DINOv2 adds learned positions; DINOv3 rotates queries and keys instead (no positions).
        let positions = cfg.isDINOv3 ? nil : try positionEmbeddings(height: layout.gridHeight, width: layout.gridWidth)
        let rotary = rotaryPositions(height: layout.gridHeight, width: layout.gridWidth)
        let captureStages = request.stages.union(request.normalizedStages).union(request.logits ? [cfg.numHiddenLayers] : [])

        let workspace = takeWorkspace(Workspace.Shape(
            rows: rows, hidden: c, ffnWidth: cfg.ffnHiddenSize, swiglu: cfg.useSwigluFFN,
            patchRows: b * patches, patchColumns: weights.patchEmbedding.inFeatures, threads: threads,
            scoresPerThread: max(request.attentionBlocks.isEmpty ? 0 : n * n, AttentionKernel.blockScores(tokens: n)),
            rowStatisticsPerThread: AttentionKernel.queryBlock(tokens: n),
            packedHeadPerThread: AttentionKernel.packedHead(tokens: n, headDim: cfg.headDim)))
        defer { keepWorkspace(workspace) }
        let x = workspace.x

        // Patch embedding: an im2col of the stride-p convolution, then one GEMM.
        dino_patchify(pixels.scalars, workspace.patches, b, cfg.numChannels, height, width, p)
        weights.patchEmbedding.apply(workspace.patches, rows: b * patches, into: workspace.embedded, threads: threads)
        // ref: HF embeddings: masked patches become the mask token before positions are added.
        if let maskedPatches, let maskToken {
            for row in 0..<(b * patches) where maskedPatches.scalars[row] != 0 {
                for j in 0..<c { workspace.embedded[row * c + j] = maskToken[j] }
            }
        }
        // ref: HF Dinov2WithRegistersEmbeddings.forward: [CLS, patches] + positions first, then
        // the registers are inserted after CLS without a position embedding (DINOv3: no positions).
        let r = layout.registers
        for i in 0..<b {
            let image = x + i * n * c
            let patchRows = image + layout.prefix * c
            let embedded = workspace.embedded + i * patches * c
            for j in 0..<(r * c) { image[c + j] = weights.registerTokens[j] }
            if let positions {
                for j in 0..<c { image[j] = weights.clsToken[j] + positions[j] }
                for j in 0..<(patches * c) { patchRows[j] = embedded[j] + positions[c + j] }
            } else {
                for j in 0..<c { image[j] = weights.clsToken[j] }
                for j in 0..<(patches * c) { patchRows[j] = embedded[j] }
            }
        }

        var encoded = Encoded(layout: layout, stages: [:], attentions: [:], projections: [:])
        func copy(_ pointer: UnsafeMutablePointer<Float>, width: Int) -> Tensor {
            Tensor(shape: [b, n, width], scalars: Array(UnsafeBufferPointer(start: pointer, count: rows * width)))
        }
        if captureStages.contains(0) { encoded.stages[0] = copy(x, width: c) }

        let pass = BlockPass(model: self, workspace: workspace, rows: rows, threads: threads, rotary: rotary,
                             attention: AttentionKernel(batch: b, tokens: n, heads: cfg.numAttentionHeads, headDim: cfg.headDim, threads: threads,
                                                        dotProducts: bf16Products == .dotProducts))
        for index in 0..<request.blocksToRun(layers: cfg.numHiddenLayers) {
            let probabilities = pass.run(weights.blocks[index], keepingAttention: request.attentionBlocks.contains(index)) {
                if request.projectionBlocks.contains(index) { encoded.projections[index] = copy(workspace.qkv, width: 3 * c) }
            }
            if let probabilities {
                encoded.attentions[index] = Tensor(shape: [b, cfg.numAttentionHeads, n, n], scalars: probabilities)
            }
            if captureStages.contains(index + 1) { encoded.stages[index + 1] = copy(x, width: c) }
        }
        return encoded
    }
}

/// One pre-norm transformer block over the residual stream of a workspace.
struct BlockPass {
    let model: VisionTransformer
    let workspace: Workspace
    let rows: Int
    let threads: Int
    /// DINOv3's rotation of the patch tokens' queries and keys, nil for DINOv2.
    let rotary: RotaryPositions?
    let attention: AttentionKernel

    /// Runs `block` on `workspace.x` in place; `projected` runs once the fused query/key/value
    /// projections are in `workspace.qkv`. Returns the attention probabilities
    /// `[B, H, N, N]` when `keepingAttention`.
    func run(_ block: BlockWeights, keepingAttention: Bool, projected: () -> Void) -> [Float]? {
        let (x, ws, c) = (workspace.x, workspace, model.configuration.hiddenSize)
        let eps = Float(model.configuration.layerNormEps)
        let ops = RowKernels(threads: threads)
        // x = x + ls1 * proj(attention(norm1(x)))
        ops.layerNorm(x, into: ws.normed, block.norm1, rows: rows, columns: c, eps: eps)
        block.qkv.apply(ws.normed, rows: rows, into: ws.qkv, threads: threads)
        rotary?.rotate(qkv: ws.qkv, batch: attention.batch, tokens: attention.tokens, heads: attention.heads)
        projected()
        var kept: [Float]?
        if keepingAttention {
            // The probabilities come from their own product; the block's output always takes the
            // streaming path, so what a pass keeps never changes the numbers it computes.
            var probabilities = [Float](repeating: 0, count: attention.batch * attention.heads * attention.tokens * attention.tokens)
            probabilities.withUnsafeMutableBufferPointer { saved in
                guard let savedBase = saved.baseAddress else { return }
                attention.full(qkv: ws.qkv, into: ws.branch, probabilities: savedBase, scores: ws.scores)
            }
            kept = probabilities
        }
        attention.streaming(qkv: ws.qkv, into: ws.attention, workspace: ws)
        block.projection.apply(ws.attention, rows: rows, into: x, epilogue: .residual(gamma: block.layerScale1),
                               scratch: ws.branch, threads: threads)

        // x = x + ls2 * ffn(norm2(x))
        ops.layerNorm(x, into: ws.normed, block.norm2, rows: rows, columns: c, eps: eps)
        switch block.feedForward {
        case let .mlp(fc1, fc2):
            fc1.apply(ws.normed, rows: rows, into: ws.hidden, epilogue: .activation(model.activation), threads: threads)
            fc2.apply(ws.hidden, rows: rows, into: x, epilogue: .residual(gamma: block.layerScale2), scratch: ws.branch, threads: threads)
        case let .swiglu(weightsIn, weightsOut):
            weightsIn.apply(ws.normed, rows: rows, into: ws.hidden, threads: threads)
            ops.swiglu(ws.hidden, into: ws.gate, rows: rows, width: weightsOut.inFeatures)
            weightsOut.apply(ws.gate, rows: rows, into: x, epilogue: .residual(gamma: block.layerScale2), scratch: ws.branch, threads: threads)
        }
        return kept
    }
}
