extension VisionTransformer {
    /// Floating-point operations of one forward pass (multiply and add counted separately) for
    /// `batch` images of `height x width` pixels: the GEMMs of the patch embedding, projections,
    /// FFN and attention. Elementwise work is left out; it is a small fraction.
    public func forwardFLOPs(batch: Int, height: Int, width: Int) -> Double {
        let cfg = configuration
        let patches = (height / cfg.patchSize) * (width / cfg.patchSize)
        let n = Double(1 + cfg.numRegisterTokens + patches)
        let b = Double(batch)
        let c = Double(cfg.hiddenSize)
        let f = Double(cfg.ffnHiddenSize)
        let k = Double(cfg.numChannels * cfg.patchSize * cfg.patchSize)
        let patchEmbedding = 2 * b * Double(patches) * k * c
        let projections = 2 * b * n * c * (3 * c + c)
        let ffn = cfg.useSwigluFFN ? 2 * b * n * c * (2 * f + f) : 2 * b * n * c * (2 * f)
        let attention = 2 * 2 * b * n * n * c
        return patchEmbedding + Double(cfg.numHiddenLayers) * (projections + ffn + attention)
    }
}
